/* Minimal test harness: CHECK records a failure with its location and goes on; a test's main
 * returns check_done(), non-zero when any check failed. */
#ifndef VEIL_TESTS_CHECK_H
#define VEIL_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Quick mode (VEIL_TEST_QUICK=1, used by the sanitizer build): fewer samples and sets. */
static inline int check_quick(void)
{
    const char *q = getenv("VEIL_TEST_QUICK");
    return q && strcmp(q, "1") == 0;
}

#endif
