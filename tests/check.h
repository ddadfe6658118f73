/* Minimal test harness: CHECK records a failure with its location and goes on; a test's main
 * returns check_done(), non-zero when any check failed. */
#ifndef VEIL_TESTS_CHECK_H
#define VEIL_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "veil/core.h"

static int check_failures;
static int check_count;

#define CHECK(cond, ...)                                                                                   \
    do {                                                                                                   \
        check_count++;                                                                                     \
        if (!(cond)) {                                                                                     \
            check_failures++;                                                                              \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);                      \
            fprintf(stderr, __VA_ARGS__);                                                                  \
            fprintf(stderr, "\n");                                                                         \
        }                                                                                                  \
    } while (0)

#define CHECK_OK(expr)                                                                                     \
    do {                                                                                                   \
        veil_status st_ = (expr);                                                                          \
        CHECK(st_ == VEIL_OK, "%s -> %s", #expr, veil_status_str(st_));                                   \
        if (st_ != VEIL_OK) exit(1);                                                                       \
    } while (0)

static inline int check_done(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

/* Removes DIR/client.veil, DIR/server.veil and DIR (a model saved by a test). */
static inline void check_remove_bundles(const char *dir)
{
    char f[1024];
    snprintf(f, sizeof f, "%s/client.veil", dir), remove(f);
    snprintf(f, sizeof f, "%s/server.veil", dir), remove(f);
    rmdir(dir);
}

/* Samples executed in real TFHE per model of the model tests: at most n, and at most
 * VEIL_TEST_EXECUTE (default 4: `make test` must fit 25 minutes on two cores; a sample of the
 * larger models takes seconds). VEIL_TEST_EXECUTE=20 runs the full counts. */
static inline int check_execute_cap(int n)
{
    const char *e = getenv("VEIL_TEST_EXECUTE");
    int cap = e && atoi(e) > 0 ? atoi(e) : 4;
    return n < cap ? n : cap;
}

/* Quick mode (VEIL_TEST_QUICK=1, used by the sanitizer build): fewer samples and sets. */
static inline int check_quick(void)
{
    const char *q = getenv("VEIL_TEST_QUICK");
    return q && strcmp(q, "1") == 0;
}

/* A CSPRNG stream for a randomized test, from VEIL_TEST_SEED (32 hex digits) when set, else from
 * the OS; the seed is printed so that a failure can be replayed. */
static inline void check_seeded_rng(veil_rng **rng)
{
    uint8_t seed[VEIL_SEED_BYTES];
    const char *env = getenv("VEIL_TEST_SEED");
    if (env && strlen(env) == 2 * VEIL_SEED_BYTES) {
        for (int i = 0; i < VEIL_SEED_BYTES; i++) {
            unsigned v;
            if (sscanf(env + 2 * i, "%2x", &v) != 1) exit(1);
            seed[i] = (uint8_t)v;
        }
    } else {
        veil_rng *os;
        CHECK_OK(veil_rng_new_os(&os));
        veil_rng_seed(os, seed);
        veil_rng_free(os);
    }
    printf("seed ");
    for (int i = 0; i < VEIL_SEED_BYTES; i++) printf("%02x", seed[i]);
    printf(" (replay with VEIL_TEST_SEED)\n");
    CHECK_OK(veil_rng_new_seeded(rng, seed));
}

#endif
