/* Container format: writer/reader round trip with several sections, exact byte layout of the
 * header, bounds of the section table, and refusal of every malformed header. */
#include <string.h>

#include "check.h"
#include "core/container.h"

int main(void)
{
    veil_writer w;
    veil_writer_begin(&w, VEIL_KIND_LWE_CIPHERTEXTS, VEIL_FLAG_SEEDED);
    veil_writer_section(&w, 0x41414141);
    veil_buf_put_u32(&w.b, 0xdeadbeef);
    veil_buf_put_u64(&w.b, 42);
    veil_writer_section(&w, 0x42424242);
    veil_writer_section(&w, 0x43434343);
    veil_buf_put(&w.b, "hello", 5);
    uint8_t *buf;
    size_t len;
    CHECK_OK(veil_writer_finish(&w, &buf, &len));
    CHECK(len == 20 + (12 + 12) + 12 + (12 + 5) + 32, "length %zu", len);
    CHECK(memcmp(buf, "VEIL\x89\r\n\x1a", 8) == 0, "magic");
    CHECK(buf[8] == 1 && buf[9] == 0, "version 1 little-endian");
    CHECK(buf[10] == VEIL_KIND_LWE_CIPHERTEXTS && buf[12] == VEIL_FLAG_SEEDED && buf[16] == 3, "kind, flags, count");
    veil_container c;
    CHECK_OK(veil_container_parse(buf, len, VEIL_KIND_LWE_CIPHERTEXTS, VEIL_FLAG_SEEDED, &c));
    CHECK(c.nsections == 3, "three sections");
    const uint8_t *p;
    size_t pl;
    CHECK_OK(veil_container_section(&c, 0x41414141, &p, &pl));
    veil_cursor cur = {p, pl, 0};
    CHECK(veil_cursor_u32(&cur) == 0xdeadbeef && veil_cursor_u64(&cur) == 42 && !cur.bad && cur.left == 0, "fields");
    CHECK(veil_cursor_u64(&cur) == 0 && cur.bad, "read past the end latches bad");
    CHECK_OK(veil_container_section(&c, 0x42424242, &p, &pl));
    CHECK(pl == 0, "empty section");
    CHECK(veil_container_section(&c, 0x44444444, &p, &pl) == VEIL_ERR_MALFORMED, "missing section");
    CHECK(veil_container_parse(buf, len, VEIL_KIND_LWE_CIPHERTEXTS, 0, &c) == VEIL_ERR_BAD_FLAGS,
          "flag not allowed by caller");
    CHECK(veil_container_parse(buf, len, VEIL_KIND_SECRET_KEY, 0, &c) == VEIL_ERR_BAD_KIND, "wrong kind");
    /* a section length pointing past the end, re-signed: malformed, not a crash */
    buf[20 + 4] = 0xff;
    buf[20 + 11] = 0x7f;
    veil_sha256(buf, len - 32, buf + len - 32);
    CHECK(veil_container_parse(buf, len, VEIL_KIND_LWE_CIPHERTEXTS, VEIL_FLAG_SEEDED, &c) == VEIL_ERR_MALFORMED,
          "oversized section length");
    /* too many sections */
    buf[20 + 4] = 12;
    buf[20 + 11] = 0;
    buf[16] = 200;
    veil_sha256(buf, len - 32, buf + len - 32);
    CHECK(veil_container_parse(buf, len, VEIL_KIND_LWE_CIPHERTEXTS, VEIL_FLAG_SEEDED, &c) == VEIL_ERR_MALFORMED,
          "section count bound");
    for (size_t cut = 0; cut < len; cut++)
        CHECK(veil_container_parse(buf, cut, VEIL_KIND_LWE_CIPHERTEXTS, VEIL_FLAG_SEEDED, &c) != VEIL_OK, "cut %zu", cut);
    veil_free(buf);
    return check_done("test_container");
}
