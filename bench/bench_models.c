/* Model benchmark (`veil bench models`): for each bundled model (models/), at the settings of its
 * test (the MLP: 8-bit post-training with rounding to 7 bits; the CNN: 6 bits, rounding to 6; the
 * QAT model: 4-bit inputs/outputs, rounding to 6), one key=value line:
 *   model pbs params compile_s keygen_s eval_key_bytes (compressed, as sent to a server)
 *   eval_key_expanded_bytes encrypt_ms execute_s (run on ciphertexts, median per sample)
 *   decrypt_ms simulate_ms clear_ms sim_speedup (execute / simulate) samples accuracy_clear
 * Times are medians over --samples test samples (keygen and compile: one run); execute uses all
 * cores (or --threads). --model NAME runs one model; --models DIR points at the models folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_models.h"
#include "bench_util.h"
#include "veil/model.h"
#include "veil/npy.h"

#ifndef VEIL_SOURCE_DIR
#define VEIL_SOURCE_DIR "."
#endif

typedef struct {
    const char *name;
    int n_bits, qat, rounding;
} bench_model;

static const bench_model MODELS[] = {
    {"breast_cancer_mlp", 8, 0, 7},
    {"digits_cnn", 6, 0, 6},
    {"digits_qat", 8, 1, 6},
};

static int argmax(const double *y, int64_t n)
{
    int a = 0;
    for (int64_t k = 1; k < n; k++)
        if (y[k] > y[a]) a = (int)k;
    return a;
}

static int load(const char *root, const char *model, const char *file, veil_array *a)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/%s", root, model, file);
    if (veil_npy_load(p, a) == VEIL_OK) return 1;
    fprintf(stderr, "veil bench models: %s\n", veil_npy_last_error());
    return 0;
}

static int bench_one(const char *root, const bench_model *bm, int samples, unsigned threads)
{
    veil_array tr = {0}, te = {0}, lab = {0};
    veil_model *m = NULL;
    veil_secret_key *sk = NULL;
    veil_eval_keys *ek = NULL;
    double *t = NULL;
    int rc = 1;
    if (!load(root, bm->name, "train.npy", &tr) || !load(root, bm->name, "test.npy", &te) ||
        !load(root, bm->name, "labels.npy", &lab))
        goto out;
    veil_model_options o;
    veil_model_options_default(&o);
    o.qat = bm->qat;
    o.n_bits.op_inputs = o.n_bits.op_weights = bm->n_bits;
    o.rounding_bits = bm->rounding;
    if (bm->qat) o.n_bits.model_inputs = o.n_bits.model_outputs = 4;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/model.onnx", root, bm->name);
    int64_t isz = tr.size / tr.shape[0];
    double t0 = bench_now_s();
    if (veil_model_compile_file(p, tr.data, (size_t)tr.shape[0], (size_t)isz, &o, &m) != VEIL_OK) {
        fprintf(stderr, "veil bench models: %s\n", veil_model_last_error());
        goto out;
    }
    double compile_s = bench_now_s() - t0;
    const veil_circuit *c = veil_model_circuit(m);
    veil_circuit_stats st;
    veil_circuit_get_stats(c, &st);
    t0 = bench_now_s();
    if (veil_circuit_keygen(c, NULL, &sk, &ek) != VEIL_OK) goto out;
    double keygen_s = bench_now_s() - t0;
    uint8_t *kb = NULL;
    size_t kn = 0;
    if (veil_eval_keys_serialize(ek, 1, &kb, &kn) != VEIL_OK) goto out;
    veil_free(kb);
    int n = samples < te.shape[0] ? samples : (int)te.shape[0];
    int64_t qsz = veil_model_quantized_output_size(m), osz = veil_model_output_size(m);
    t = malloc(sizeof(double) * 5 * (size_t)n);
    int64_t *q = malloc(sizeof(int64_t) * (size_t)(isz + qsz));
    double *y = malloc(sizeof(double) * (size_t)osz);
    if (!t || !q || !y) {
        free(q), free(y);
        goto out;
    }
    double *tenc = t, *trun = t + n, *tdec = t + 2 * n, *tsim = t + 3 * n, *tclr = t + 4 * n;
    for (int i = 0; i < n; i++) {
        const int64_t *ins[1] = {q};
        int64_t *outs[1] = {q + isz};
        veil_ciphertexts *ct = NULL, *res = NULL;
        double a = bench_now_s();
        veil_status s = veil_model_quantize_input(m, te.data + i * isz, q);
        if (s == VEIL_OK) s = veil_circuit_encrypt(c, sk, ins, NULL, &ct);
        double b = bench_now_s();
        if (s == VEIL_OK) s = veil_circuit_run(c, ek, ct, threads, &res);
        double d = bench_now_s();
        if (s == VEIL_OK) s = veil_circuit_decrypt(c, sk, res, outs);
        if (s == VEIL_OK) s = veil_model_dequantize_output(m, q + isz, y);
        double e = bench_now_s();
        veil_ciphertexts_free(ct), veil_ciphertexts_free(res);
        if (s != VEIL_OK) {
            fprintf(stderr, "veil bench models: %s: %s\n", bm->name, veil_status_str(s));
            free(q), free(y);
            goto out;
        }
        tenc[i] = b - a, trun[i] = d - b, tdec[i] = e - d;
        a = bench_now_s();
        if (veil_model_forward(m, VEIL_MODE_SIMULATE, te.data + i * isz, y) != VEIL_OK) break;
        b = bench_now_s();
        if (veil_model_forward(m, VEIL_MODE_CLEAR, te.data + i * isz, y) != VEIL_OK) break;
        tsim[i] = b - a, tclr[i] = bench_now_s() - b;
    }
    int correct = 0;
    for (int64_t i = 0; i < te.shape[0]; i++)
        if (veil_model_forward(m, VEIL_MODE_CLEAR, te.data + i * isz, y) == VEIL_OK)
            correct += argmax(y, osz) == (int)lab.data[i];
    free(q), free(y);
    double run_med = bench_median(trun, n), sim_med = bench_median(tsim, n);
    printf("model=%s pbs=%zu params=%s compile_s=%.3f keygen_s=%.2f eval_key_bytes=%zu eval_key_expanded_bytes=%llu "
           "encrypt_ms=%.2f execute_s=%.3f decrypt_ms=%.3f simulate_ms=%.4f clear_ms=%.4f sim_speedup=%.0f "
           "samples=%d accuracy_clear=%.4f\n",
           bm->name, st.pbs_count, veil_circuit_params(c)->name, compile_s, keygen_s, kn,
           (unsigned long long)(st.bsk_bytes + st.ksk_bytes), bench_median(tenc, n) * 1e3, run_med,
           bench_median(tdec, n) * 1e3, sim_med * 1e3, bench_median(tclr, n) * 1e3, run_med / sim_med, n,
           (double)correct / (double)te.shape[0]);
    fflush(stdout);
    rc = 0;
out:
    free(t);
    veil_secret_key_free(sk);
    veil_eval_keys_free(ek);
    veil_model_free(m);
    veil_array_free(&tr), veil_array_free(&te), veil_array_free(&lab);
    return rc;
}

int veil_bench_models(int argc, char **argv)
{
    const char *root = VEIL_SOURCE_DIR "/models", *only = NULL;
    int samples = 5;
    unsigned threads = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: veil bench models [--model NAME] [--samples S] [--threads T] [--models DIR]\n"
                   "  NAME: breast_cancer_mlp, digits_cnn, digits_qat (default: all); S: test samples per\n"
                   "  model (default 5); T: threads for execute (default: all cores)\n");
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "veil bench models: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--model")) only = argv[++i];
        else if (!strcmp(argv[i], "--models")) root = argv[++i];
        else if (!strcmp(argv[i], "--samples")) samples = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads")) threads = (unsigned)atoi(argv[++i]);
        else {
            fprintf(stderr, "veil bench models: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (samples < 1) {
        fprintf(stderr, "veil bench models: --samples must be at least 1\n");
        return 2;
    }
    int rc = 0, ran = 0;
    for (size_t k = 0; k < sizeof MODELS / sizeof *MODELS; k++)
        if (!only || !strcmp(only, MODELS[k].name)) rc |= bench_one(root, &MODELS[k], samples, threads), ran++;
    if (!ran) {
        fprintf(stderr, "veil bench models: unknown model '%s'\n", only);
        return 2;
    }
    return rc;
}
