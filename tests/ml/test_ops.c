/* One import test per supported operator (tests/ml/ops/, written by models/make_op_tests.py with
 * onnx.helper; references from onnxruntime, or NumPy for QONNX Quant):
 *  - the imported float graph gives the reference outputs within 1e-4 (relative above 1);
 *  - quantized to 8 bits and compiled, clear and simulate stay within the model's tolerance of the
 *    reference, as a fraction of the output range (ArgMax: the same index on 90% of the samples);
 *  - an unsupported operator, or ONNX-ML mode, is refused with its name and its node's name; every truncation of a
 *    model and random bytes are refused without a crash.
 * Usage: ml_test_ops [NAME ...] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/container.h"
#include "veil/model.h"
#include "veil/npy.h"

#ifndef VEIL_SOURCE_DIR
#define VEIL_SOURCE_DIR "."
#endif
#define OPS VEIL_SOURCE_DIR "/tests/ml/ops"

static int load(const char *name, const char *suffix, veil_array *a)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s%s", OPS, name, suffix);
    veil_status st = veil_npy_load(p, a);
    CHECK(st == VEIL_OK, "%s: %s", p, veil_npy_last_error());
    return st == VEIL_OK;
}

static void run(const char *name, int qat, double tol, int rounding)
{
    veil_array x, y;
    if (!load(name, ".x.npy", &x)) return;
    if (!load(name, ".y.npy", &y)) {
        veil_array_free(&x);
        return;
    }
    int64_t n = x.shape[0], isz = x.size / n, osz = y.size / n;
    veil_model_options o;
    veil_model_options_default(&o);
    o.qat = qat;
    o.rounding_bits = rounding;
    char path[512];
    snprintf(path, sizeof path, "%s/%s.onnx", OPS, name);
    veil_model *m = NULL;
    veil_status st = veil_model_compile_file(path, x.data, (size_t)n, (size_t)isz, &o, &m);
    CHECK(st == VEIL_OK, "%s: %s", name, veil_model_last_error());
    if (st == VEIL_OK) {
        CHECK(veil_model_output_size(m) == osz, "%s: output size %lld, reference %lld", name,
              (long long)veil_model_output_size(m), (long long)osz);
        double lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < y.size; i++) lo = fmin(lo, y.data[i]), hi = fmax(hi, y.data[i]);
        double range = hi > lo ? hi - lo : 1;
        double *out = malloc(sizeof(double) * (size_t)osz);
        double dfloat = 0, dclear = 0, dsim = 0;
        int same_clear = 0, same_sim = 0, argmax = strcmp(name, "argmax") == 0;
        uint8_t seed[VEIL_SEED_BYTES] = {5};
        CHECK_OK(veil_model_seed_simulation(m, seed));
        for (int64_t s = 0; s < n && veil_model_output_size(m) == osz; s++) {
            const double *xs = x.data + s * isz, *ys = y.data + s * osz;
            CHECK_OK(veil_model_float_forward(m, xs, out));
            for (int64_t k = 0; k < osz; k++) dfloat = fmax(dfloat, fabs(out[k] - ys[k]) / fmax(1, fabs(ys[k])));
            CHECK_OK(veil_model_forward(m, VEIL_MODE_CLEAR, xs, out));
            for (int64_t k = 0; k < osz; k++) dclear = fmax(dclear, fabs(out[k] - ys[k]) / range);
            same_clear += out[0] == ys[0];
            CHECK_OK(veil_model_forward(m, VEIL_MODE_SIMULATE, xs, out));
            for (int64_t k = 0; k < osz; k++) dsim = fmax(dsim, fabs(out[k] - ys[k]) / range);
            same_sim += out[0] == ys[0];
        }
        free(out);
        veil_circuit_stats cs;
        veil_circuit_get_stats(veil_model_circuit(m), &cs);
        printf("%-20s float %.2g  clear %.3f  simulate %.3f of the output range (tolerance %.2f), max bit-width %u, "
               "%zu PBS\n",
               name, dfloat, dclear, dsim, tol, veil_model_max_bit_width(m), cs.pbs_count);
        CHECK(dfloat <= 1e-4, "%s: float import differs from the reference by %g", name, dfloat);
        if (argmax) {
            CHECK(same_clear >= n * 9 / 10 && same_sim >= n * 9 / 10, "%s: same index on %d (clear), %d (simulate) of %lld",
                  name, same_clear, same_sim, (long long)n);
        } else {
            CHECK(dclear <= tol, "%s: clear differs from the reference by %.3f of the range", name, dclear);
            CHECK(dsim <= tol, "%s: simulate differs from the reference by %.3f of the range", name, dsim);
        }
    }
    veil_model_free(m);
    veil_array_free(&x), veil_array_free(&y);
}

static void refusals(void)
{
    veil_array x;
    if (!load("relu", ".x.npy", &x)) return;
    veil_model *m = NULL;
    veil_status st = veil_model_compile_file(OPS "/unsupported.onnx", x.data, (size_t)x.shape[0], 8, NULL, &m);
    CHECK(st == VEIL_ERR_UNSUPPORTED && !m, "unsupported operator: %s", veil_status_str(st));
    CHECK(strstr(veil_model_last_error(), "unsupported operator 'Cos'") && strstr(veil_model_last_error(), "my_cos"),
          "error names the operator and the node: %s", veil_model_last_error());
    /* ONNX-ML modes veil does not support are refused by name, with their node */
    static const char *const ml_refused[][3] = {
        {"unsupported_probit", "post_transform 'PROBIT'", "lc_probit"},
        {"unsupported_strings", "classlabels_strings", "lc_str"},
        {"unsupported_normalizer", "norm 'L3'", "nrm"},
        {"unsupported_regressor_transform", "post_transform 'LOGISTIC'", "lr_logistic"},
        {"unsupported_tree_eq", "mode 'BRANCH_EQ'", "tree_eq"},
        {"unsupported_tree_neq", "mode 'BRANCH_NEQ'", "tree_neq"},
        {"unsupported_tree_max", "aggregate_function 'MAX'", "tree_max"},
    };
    for (size_t i = 0; i < sizeof ml_refused / sizeof *ml_refused; i++) {
        char p[256];
        snprintf(p, sizeof p, OPS "/%s.onnx", ml_refused[i][0]);
        st = veil_model_compile_file(p, x.data, (size_t)x.shape[0], 8, NULL, &m);
        CHECK(st == VEIL_ERR_UNSUPPORTED && !m, "%s: %s", ml_refused[i][0], veil_status_str(st));
        CHECK(strstr(veil_model_last_error(), ml_refused[i][1]) && strstr(veil_model_last_error(), ml_refused[i][2]),
              "%s: the error names the mode and the node: %s", ml_refused[i][0], veil_model_last_error());
    }
    uint8_t *b;
    size_t n;
    CHECK_OK(veil_file_read_all(OPS "/gemm.onnx", 1 << 20, &b, &n));
    int refused = 0;
    for (size_t len = 0; len < n; len++) {
        st = veil_model_compile_buffer(b, len, x.data, (size_t)x.shape[0], 8, NULL, &m);
        refused += st != VEIL_OK;
        CHECK(st != VEIL_OK || m, "a success gives a model");
        veil_model_free(m);
        CHECK(st == VEIL_OK || veil_model_last_error()[0], "a refusal has a reason");
    }
    printf("truncated gemm.onnx: %d of %zu prefixes refused\n", refused, n);
    CHECK(refused >= (int)n - 2, "truncations refused: %d/%zu", refused, n);
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) s ^= s << 13, s ^= s >> 7, s ^= s << 17, b[i] = (uint8_t)s;
    st = veil_model_compile_buffer(b, n, x.data, (size_t)x.shape[0], 8, NULL, &m);
    CHECK(st != VEIL_OK && !m, "random bytes refused");
    printf("random bytes: %s\n", veil_model_last_error());
    veil_free(b);
    veil_array_free(&x);
}

/* Two inputs (a, b) and two outputs (y1 = Relu(a + b), y2 = Concat(a, b)·W + bias): each output
 * is compared with its own reference; samples are a's values then b's, outputs y1's then y2's. */
static void two_io(void)
{
    veil_array a, b, y1, y2;
    if (!load("two_io", ".a.npy", &a) || !load("two_io", ".b.npy", &b) || !load("two_io", ".y1.npy", &y1) ||
        !load("two_io", ".y2.npy", &y2))
        return;
    int64_t n = a.shape[0], ra = a.size / n, rb = b.size / n, r1 = y1.size / n, r2 = y2.size / n;
    double *x = malloc(sizeof(double) * (size_t)(n * (ra + rb))), *out = malloc(sizeof(double) * (size_t)(r1 + r2));
    for (int64_t s = 0; s < n; s++) {
        memcpy(x + s * (ra + rb), a.data + s * ra, sizeof(double) * (size_t)ra);
        memcpy(x + s * (ra + rb) + ra, b.data + s * rb, sizeof(double) * (size_t)rb);
    }
    veil_model_options o;
    veil_model_options_default(&o);
    o.rounding_bits = 6;
    veil_model *m = NULL;
    veil_status st = veil_model_compile_file(OPS "/two_io.onnx", x, (size_t)n, (size_t)ra, &o, &m);
    CHECK(st == VEIL_ERR_INVALID_ARG && strstr(veil_model_last_error(), "2 inputs have 8 together"),
          "a sample of one input's size is refused: %s", veil_model_last_error());
    st = veil_model_compile_file(OPS "/two_io.onnx", x, (size_t)n, (size_t)(ra + rb), &o, &m);
    CHECK(st == VEIL_OK, "two_io: %s", veil_model_last_error());
    if (st == VEIL_OK) {
        CHECK(veil_model_input_count(m) == 2 && veil_model_output_count(m) == 2 && veil_model_output_size(m) == r1 + r2 &&
                  veil_model_output_size_at(m, 0) == r1 && veil_model_output_size_at(m, 1) == r2 &&
                  !strcmp(veil_model_output_name(m, 1), "y2") && !strcmp(veil_model_input_name(m, 1), "b"),
              "two_io: inputs a, b and outputs y1 (%lld), y2 (%lld)", (long long)r1, (long long)r2);
        double range[2] = {0, 0}, dfloat = 0, d[2][2] = {{0, 0}, {0, 0}};
        const veil_array *ys[2] = {&y1, &y2};
        for (int j = 0; j < 2; j++) {
            double lo = INFINITY, hi = -INFINITY;
            for (int64_t i = 0; i < ys[j]->size; i++) lo = fmin(lo, ys[j]->data[i]), hi = fmax(hi, ys[j]->data[i]);
            range[j] = hi > lo ? hi - lo : 1;
        }
        uint8_t seed[VEIL_SEED_BYTES] = {6};
        CHECK_OK(veil_model_seed_simulation(m, seed));
        for (int64_t s = 0; s < n; s++) {
            const double *xs = x + s * (ra + rb), *ref[2] = {y1.data + s * r1, y2.data + s * r2};
            int64_t rs[2] = {r1, r2};
            CHECK_OK(veil_model_float_forward(m, xs, out));
            for (int j = 0, off = 0; j < 2; off += (int)rs[j], j++)
                for (int64_t k = 0; k < rs[j]; k++)
                    dfloat = fmax(dfloat, fabs(out[off + k] - ref[j][k]) / fmax(1, fabs(ref[j][k])));
            for (int mode = 0; mode < 2; mode++) {
                CHECK_OK(veil_model_forward(m, mode ? VEIL_MODE_SIMULATE : VEIL_MODE_CLEAR, xs, out));
                for (int j = 0, off = 0; j < 2; off += (int)rs[j], j++)
                    for (int64_t k = 0; k < rs[j]; k++)
                        d[mode][j] = fmax(d[mode][j], fabs(out[off + k] - ref[j][k]) / range[j]);
            }
        }
        printf("two_io               float %.2g  clear %.3f, %.3f  simulate %.3f, %.3f of each output's range\n", dfloat,
               d[0][0], d[0][1], d[1][0], d[1][1]);
        CHECK(dfloat <= 1e-4, "two_io: float import differs from the reference by %g", dfloat);
        for (int mode = 0; mode < 2; mode++)
            for (int j = 0; j < 2; j++)
                CHECK(d[mode][j] <= 0.05, "two_io: %s output y%d differs by %.3f of its range", mode ? "simulate" : "clear",
                      j + 1, d[mode][j]);
    }
    veil_model_free(m);
    free(x), free(out);
    veil_array_free(&a), veil_array_free(&b), veil_array_free(&y1), veil_array_free(&y2);
}

int main(int argc, char **argv)
{
    if (argc < 2) refusals();
    int two = argc < 2 || !strcmp(argv[1], "two_io");
    if (two) two_io();
    FILE *f = fopen(OPS "/manifest.txt", "r");
    CHECK(f != NULL, "cannot open %s", OPS "/manifest.txt");
    if (!f) return check_done("ml_test_ops");
    char line[256];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        char name[128];
        int qat, rounding;
        double tol;
        if (line[0] == '#' || sscanf(line, "%127s %d %lf %d", name, &qat, &tol, &rounding) != 4) continue;
        int sel = argc < 2;
        for (int a = 1; a < argc; a++) sel |= strcmp(argv[a], name) == 0;
        if (!sel) continue;
        run(name, qat, tol, rounding);
        count++;
    }
    fclose(f);
    CHECK(count + two >= (argc < 2 ? 40 : 1), "only %d operator models ran", count);
    return check_done("ml_test_ops");
}
