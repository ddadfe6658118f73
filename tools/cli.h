/* Small helpers shared by the subcommands: option values and a progress bar on stderr. */
#ifndef VEIL_TOOLS_CLI_H
#define VEIL_TOOLS_CLI_H

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The value after option argv[*i] ("--opt VALUE"); NULL (and a message) when missing. */
static inline const char *cli_value(const char *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "veil %s: %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

/* A whole decimal integer in [lo, hi]. */
static inline int cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "veil %s: %s must be an integer in %ld..%ld (got '%s')\n", cmd, opt, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

/* A probability in (0, 1): "1e-5", "0.001" or "2^-40". */
static inline int cli_prob(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end;
    double v;
    if (strncmp(s, "2^", 2) == 0) {
        long e = strtol(s + 2, &end, 10);
        v = *end || end == s + 2 ? -1 : ldexp(1.0, (int)(e < -1000 ? -1000 : e > 0 ? 0 : e));
    } else {
        v = strtod(s, &end);
        if (*end || end == s) v = -1;
    }
    if (!(v > 0 && v < 1)) {
        fprintf(stderr, "veil %s: %s must be a probability in (0, 1), e.g. 1e-5 or 2^-40 (got '%s')\n", cmd, opt, s);
        return 0;
    }
    *out = v;
    return 1;
}

/* "[#####     ] 12/40  3.2 s/it  ETA 1m30s" on stderr, redrawn in place; only on a terminal
 * unless forced. */
static inline void cli_progress(int enabled, size_t done, size_t total, double elapsed)
{
    if (!enabled || total == 0) return;
    int width = 30, fill = (int)(width * done / total);
    double per = done ? elapsed / (double)done : 0, eta = per * (double)(total - done);
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu  %.3g s/sample  ETA %dm%02ds ", fill, "##############################",
            width - fill, "", done, total, per, (int)eta / 60, (int)eta % 60);
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}

static inline int cli_tty_progress(void) { return isatty(2); }

#endif
