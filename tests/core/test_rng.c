/* CSPRNG: seeded streams are deterministic and chunking-independent, OS-seeded streams differ,
 * the normal sampler has mean 0 and variance 1 within 5σ of their sampling error. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "veil/core.h"

int main(void)
{
    uint8_t seed[16] = {7, 7, 7};
    veil_rng *a, *b, *c, *d;
    CHECK_OK(veil_rng_new_seeded(&a, seed));
    CHECK_OK(veil_rng_new_seeded(&b, seed));
    uint8_t x[10000], y[10000];
    veil_rng_bytes(a, x, sizeof x);
    for (size_t off = 0; off < sizeof y;) { /* odd chunk sizes give the same stream */
        size_t take = 1 + off % 97;
        if (take > sizeof y - off) take = sizeof y - off;
        veil_rng_bytes(b, y + off, take);
        off += take;
    }
    CHECK(memcmp(x, y, sizeof x) == 0, "seeded stream independent of chunking");
    CHECK_OK(veil_rng_new_os(&c));
    CHECK_OK(veil_rng_new_os(&d));
    CHECK(veil_rng_u64(c) != veil_rng_u64(d), "two OS-seeded generators differ");
    int ones = 0;
    for (int i = 0; i < 10000; i++) ones += __builtin_popcountll(veil_rng_u64(c));
    CHECK(abs(ones - 320000) < 5 * 400, "bit balance %d of 640000", ones);
    const int n = 200000;
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        double v = veil_rng_normal(c);
        s += v;
        s2 += v * v;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    CHECK(fabs(mean) < 5 / sqrt(n), "normal mean %g", mean);
    CHECK(fabs(var - 1) < 5 * sqrt(2.0 / n), "normal variance %g", var);
    veil_rng_free(a);
    veil_rng_free(b);
    veil_rng_free(c);
    veil_rng_free(d);
    CHECK(strcmp(veil_status_str(VEIL_ERR_CHECKSUM), "checksum mismatch (corrupted data)") == 0, "status names");
    CHECK(strcmp(veil_status_str((veil_status)999), "unknown status") == 0, "unknown status name");
    return check_done("test_rng");
}
