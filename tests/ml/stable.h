/* Samples to execute on, for tests that compare a few encrypted inferences with clear ones.
 *
 * Approximate rounding lets an accumulator at a rounding midpoint land on either neighbour, in
 * simulation as under encryption, so a sample near a decision boundary may predict otherwise in
 * execute than in clear: with digits_cnn at 6 bits simulate disagrees with clear on about 1.5% of
 * the samples per run, and 4 executed samples all agreeing failed one CI run in fifteen or so.
 * Comparing a handful of encrypted inferences is only sound on samples whose prediction does not
 * depend on the draw: stable_samples keeps those on which simulate predicts as clear in every one
 * of STABLE_RUNS runs. A sample that flips with probability f passes that screen with probability
 * (1 - f)^STABLE_RUNS and then flips in execute with probability f: at most
 * 1 / ((STABLE_RUNS + 1) e) < 1e-4 per executed sample, whatever f is. A broken execute still
 * fails, since on these samples it must reproduce clear's prediction every time. */
#ifndef VEIL_TESTS_STABLE_H
#define VEIL_TESTS_STABLE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "veil/model.h"

#define STABLE_RUNS 4000

static int stable_argmax(const double *y, int64_t n)
{
    int a = 0;
    for (int64_t k = 1; k < n; k++)
        if (y[k] > y[a]) a = (int)k;
    return a;
}

/* idx[0..return) gets the first `want` of the n samples of x (isz values each) on which simulate
 * predicts as clear in all STABLE_RUNS runs: the same argmax when the model has several outputs,
 * else the same value. Returns how many it found (fewer than want when the test set runs out);
 * -1 when a forward pass fails. */
static int stable_samples(veil_model *m, const double *x, int64_t n, int64_t isz, int64_t osz, int want,
                          int *idx)
{
    double *yc = malloc(sizeof(double) * (size_t)osz), *ys = malloc(sizeof(double) * (size_t)osz);
    int found = 0, err = !yc || !ys;
    for (int64_t i = 0; !err && i < n && found < want; i++) {
        const double *xi = x + i * isz;
        int ok = veil_model_forward(m, VEIL_MODE_CLEAR, xi, yc) == VEIL_OK;
        err = !ok;
        for (int r = 0; ok && r < STABLE_RUNS; r++) {
            if (veil_model_forward(m, VEIL_MODE_SIMULATE, xi, ys) != VEIL_OK) ok = 0, err = 1;
            else if (osz > 1 ? stable_argmax(ys, osz) != stable_argmax(yc, osz)
                             : memcmp(ys, yc, sizeof(double)) != 0)
                ok = 0;
        }
        if (ok) idx[found++] = (int)i;
    }
    free(yc), free(ys);
    return err ? -1 : found;
}

#endif
