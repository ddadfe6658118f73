/* libFuzzer target: the server's request handling in-process (routes.c and the key store behind
 * it), from an arbitrary method, path, query, headers and body. The input is text:
 *   line 1: METHOD SP URL      lines 2..: "Name: value" headers, until an empty line
 *   then the body, delivered in up to 3 pieces (cut where the first header byte says).
 * Every answer must be a status the API documents (200, 201, 400, 403, 404, 405, 409, 413, 503,
 * 507); a 5xx other than 503/507 or no answer at all is a crash. */
#include <stdint.h>

#include "serve_harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    h_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 20)) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    /* the request line */
    char *nl = memchr(text, '\n', size);
    size_t line_end = nl ? (size_t)(nl - text) : size;
    text[line_end] = 0;
    char *sp = strchr(text, ' ');
    const char *method = text, *url = "/";
    if (sp) *sp = 0, url = sp + 1;
    /* headers */
    const char *hk[H_MAX_HEADERS], *hv[H_MAX_HEADERS];
    int nh = 0;
    size_t at = line_end + 1;
    while (at < size) {
        char *e = memchr(text + at, '\n', size - at);
        size_t le = e ? (size_t)(e - text) : size;
        text[le] = 0;
        if (le == at) { /* the empty line */
            at = le + 1;
            break;
        }
        char *colon = strchr(text + at, ':');
        if (colon && nh < H_MAX_HEADERS) {
            *colon = 0;
            char *v = colon + 1;
            while (*v == ' ') v++;
            hk[nh] = text + at, hv[nh++] = v;
        }
        at = le + 1;
    }
    const uint8_t *body = at < size ? data + at : data + size;
    size_t blen = at < size ? size - at : 0;
    size_t cuts[2] = {blen / 3, blen / 2};
    if (blen && size) cuts[0] = data[0] % (blen + 1), cuts[1] = cuts[0] + (data[size - 1] % (blen - cuts[0] + 1));
    unsigned code = h_request(method, url, hk, hv, nh, body, blen, cuts, 2);
    free(text);
    switch (code) {
    case 200: case 201: case 400: case 403: case 404: case 405: case 409: case 413: case 503: case 507: break;
    default:
        fprintf(stderr, "fuzz_serve: answer %u\n", code);
        abort();
    }
    return 0;
}
