/* Model benchmark (`veil bench models`): for each bundled model (models/), at the settings of its
 * test (the MLP: 8-bit post-training with rounding to 7 bits; the CNNs: 6 bits rounded to 6 and 8
 * bits rounded to 6 with max pooling; the QAT model: 4-bit inputs/outputs, rounding to 6,
 * approximate and exact; the scikit-learn and XGBoost models at veil's defaults), compiled twice: with precision partitions (the default) and with
 * --single-precision. One key=value line per form:
 *   model precision (partitioned|single) partitions pbs cross_ks params compile_s keygen_s
 *   eval_key_bytes (compressed, as sent to a server) eval_key_expanded_bytes cost encrypt_ms
 *   execute_s (run on ciphertexts, median per sample) decrypt_ms simulate_ms clear_ms sim_speedup
 *   (execute / simulate) samples accuracy_clear (r2_clear for a regressor)
 * then one line comparing them: keys_ratio (partitioned / single, expanded) and speedup (single's
 * execute median / partitioned's), the two run sample by sample in turn in this process. A form
 * whose expanded keys would not fit in 60% of this machine's memory is compiled and described but
 * not executed (execute_s=skipped). Times are medians over --samples test samples (keygen and
 * compile: one run); execute uses all cores (or --threads). --model NAME runs one model (a name
 * below, e.g. digits_qat_exact); --models DIR points at the models folder. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_models.h"
#include "bench_util.h"
#include "cli_io.h"
#include "veil/model.h"
#include "veil/npy.h"

#ifndef VEIL_SOURCE_DIR
#define VEIL_SOURCE_DIR "."
#endif

typedef struct {
    const char *name, *dir;
    int n_bits, qat, rounding, exact, regressor; /* regressor: R^2 instead of accuracy */
} bench_model;

static const bench_model MODELS[] = {
    {"breast_cancer_mlp", "breast_cancer_mlp", 8, 0, 7, 0, 0},
    {"digits_cnn", "digits_cnn", 6, 0, 6, 0, 0},
    {"digits_pool", "digits_pool", 8, 0, 6, 0, 0},
    {"digits_qat", "digits_qat", 8, 1, 6, 0, 0},
    {"digits_qat_exact", "digits_qat", 8, 1, 6, 1, 0},
    /* the same with no options at all: automatic rounding (6 bits, each channel over its own
     * range); the QAT model without --qat too */
    {"breast_cancer_mlp_auto", "breast_cancer_mlp", 8, 0, 0, 0, 0},
    {"digits_cnn_auto", "digits_cnn", 8, 0, 0, 0, 0},
    {"digits_pool_auto", "digits_pool", 8, 0, 0, 0, 0},
    {"digits_qat_auto", "digits_qat", 8, 0, 0, 0, 0},
    {"breast_cancer_heavy_auto", "breast_cancer_heavy", 8, 0, 0, 0, 0}, /* with its calibration search */
    /* scikit-learn linear models (skl2onnx), at veil's defaults: leveled, no lookups */
    {"logreg_breast_cancer", "logreg_breast_cancer", 8, 0, 0, 0, 0},
    {"logreg_digits", "logreg_digits", 8, 0, 0, 0, 0},
    {"linreg_diabetes", "linreg_diabetes", 8, 0, 0, 0, 1},
    /* tree ensembles (GEMM form, 6-bit inputs and leaves) */
    {"dt_breast_cancer", "dt_breast_cancer", 8, 0, 0, 0, 0},
    {"rf_breast_cancer", "rf_breast_cancer", 8, 0, 0, 0, 0},
    {"gb_breast_cancer", "gb_breast_cancer", 8, 0, 0, 0, 0},
    {"xgb_breast_cancer", "xgb_breast_cancer", 8, 0, 0, 0, 0},
    {"rf_diabetes", "rf_diabetes", 8, 0, 0, 0, 1},
};



static int load(const char *root, const char *model, const char *file, veil_array *a)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/%s", root, model, file);
    if (veil_npy_load(p, a) == VEIL_OK) return 1;
    fprintf(stderr, "veil bench models: %s\n", veil_npy_last_error());
    return 0;
}

/* One compiled form of a model and its measurements. */
typedef struct {
    veil_model *m;
    veil_secret_key *sk;
    veil_eval_keys *ek;
    veil_circuit_stats st;
    double compile_s, keygen_s;
    size_t key_bytes;
    int run; /* executed (keys fit in memory) */
    double *tenc, *trun, *tdec, *tsim, *tclr;
} form;

static void form_free(form *f)
{
    free(f->tenc);
    veil_secret_key_free(f->sk);
    veil_eval_keys_free(f->ek);
    veil_model_free(f->m);
}

static int form_new(form *f, const char *onnx, const veil_array *tr, const veil_model_options *o, int n)
{
    memset(f, 0, sizeof *f);
    int64_t isz = tr->size / tr->shape[0];
    double t0 = bench_now_s();
    if (veil_model_compile_file(onnx, tr->data, (size_t)tr->shape[0], (size_t)isz, o, &f->m) != VEIL_OK) {
        fprintf(stderr, "veil bench models: %s\n", veil_model_last_error());
        return 0;
    }
    f->compile_s = bench_now_s() - t0;
    const veil_circuit *c = veil_model_circuit(f->m);
    veil_circuit_get_stats(c, &f->st);
    if (!(f->tenc = calloc(5 * (size_t)n, sizeof(double)))) return 0;
    f->trun = f->tenc + n, f->tdec = f->tenc + 2 * n, f->tsim = f->tenc + 3 * n, f->tclr = f->tenc + 4 * n;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGE_SIZE);
    double mem = pages > 0 && psz > 0 ? (double)pages * (double)psz : 0;
    f->run = !(mem > 0 && (double)(f->st.bsk_bytes + f->st.ksk_bytes) > 0.6 * mem);
    if (!f->run) return 1;
    t0 = bench_now_s();
    if (veil_circuit_keygen(c, NULL, &f->sk, &f->ek) != VEIL_OK) return 0;
    f->keygen_s = bench_now_s() - t0;
    uint8_t *kb = NULL;
    if (f->ek && veil_eval_keys_serialize(f->ek, 1, &kb, &f->key_bytes) != VEIL_OK) return 0;
    veil_free(kb);
    return 1;
}

/* sample i through the form: encrypt, run, decrypt (when it runs), simulate, clear */
static int form_sample(form *f, const double *x, int i, unsigned threads, int64_t *q, double *y, const char *name)
{
    const veil_circuit *c = veil_model_circuit(f->m);
    int64_t isz = veil_model_input_size(f->m);
    double a, b;
    if (f->run) {
        int64_t *in[VEIL_MODEL_MAX_IO], *outs[VEIL_MODEL_MAX_IO];
        veil_circuit_io_split(c, 0, q, in, VEIL_MODEL_MAX_IO);
        veil_circuit_io_split(c, 1, q + isz, outs, VEIL_MODEL_MAX_IO);
        const int64_t *const *ins = (const int64_t *const *)in;
        veil_ciphertexts *ct = NULL, *res = NULL;
        a = bench_now_s();
        veil_status s = veil_model_quantize_input(f->m, x, q);
        if (s == VEIL_OK) s = veil_circuit_encrypt(c, f->sk, ins, NULL, &ct);
        b = bench_now_s();
        if (s == VEIL_OK) s = veil_circuit_run(c, f->ek, ct, threads, &res);
        double d = bench_now_s();
        if (s == VEIL_OK) s = veil_circuit_decrypt(c, f->sk, res, outs);
        if (s == VEIL_OK) s = veil_model_dequantize_output(f->m, q + isz, y);
        double e = bench_now_s();
        veil_ciphertexts_free(ct), veil_ciphertexts_free(res);
        if (s != VEIL_OK) {
            fprintf(stderr, "veil bench models: %s: %s\n", name, veil_status_str(s));
            return 0;
        }
        f->tenc[i] = b - a, f->trun[i] = d - b, f->tdec[i] = e - d;
    }
    a = bench_now_s();
    if (veil_model_forward(f->m, VEIL_MODE_SIMULATE, x, y) != VEIL_OK) return 0;
    b = bench_now_s();
    if (veil_model_forward(f->m, VEIL_MODE_CLEAR, x, y) != VEIL_OK) return 0;
    f->tsim[i] = b - a, f->tclr[i] = bench_now_s() - b;
    return 1;
}

static void form_print(form *f, const bench_model *bm, int single, int n, const veil_array *te, const veil_array *lab)
{
    const char *name = bm->name;
    const veil_circuit *c = veil_model_circuit(f->m);
    int64_t isz = veil_model_input_size(f->m), osz = veil_model_output_size(f->m), o0 = veil_model_output_size_at(f->m, 0);
    double *y = malloc(sizeof(double) * (size_t)osz);
    int correct = 0;
    double ssr = 0, sst = 0, mean = 0;
    for (int64_t i = 0; i < lab->size; i++) mean += lab->data[i] / (double)lab->size;
    for (int64_t i = 0; y && i < te->shape[0]; i++)
        if (veil_model_forward(f->m, VEIL_MODE_CLEAR, te->data + i * isz, y) == VEIL_OK) {
            correct += cli_predicted_class(y, o0) == (int64_t)lab->data[i];
            ssr += (lab->data[i] - y[0]) * (lab->data[i] - y[0]);
            sst += (lab->data[i] - mean) * (lab->data[i] - mean);
        }
    free(y);
    const veil_circuit_stats *st = &f->st;
    printf("model=%s precision=%s partitions=%zu pbs=%zu cross_ks=%zu params=%s compile_s=%.3f ", name,
           single ? "single" : "partitioned", st->partitions, st->pbs_count, st->cross_ks_count,
           veil_circuit_params(c)->name, f->compile_s);
    if (f->run) {
        double run_med = bench_median(f->trun, n), sim_med = bench_median(f->tsim, n);
        printf("keygen_s=%.4f eval_key_bytes=%zu eval_key_expanded_bytes=%llu cost=%.4g encrypt_ms=%.2f execute_s=%.6f "
               "decrypt_ms=%.3f simulate_ms=%.4f clear_ms=%.4f sim_speedup=%.0f ",
               f->keygen_s, f->key_bytes, (unsigned long long)(st->bsk_bytes + st->ksk_bytes), st->cost,
               bench_median(f->tenc, n) * 1e3, run_med, bench_median(f->tdec, n) * 1e3, sim_med * 1e3,
               bench_median(f->tclr, n) * 1e3, run_med / sim_med);
    } else {
        printf("keygen_s=skipped eval_key_bytes=%llu eval_key_expanded_bytes=%llu cost=%.4g execute_s=skipped "
               "simulate_ms=%.4f clear_ms=%.4f ",
               (unsigned long long)(st->bsk_seeded_bytes + st->ksk_seeded_bytes),
               (unsigned long long)(st->bsk_bytes + st->ksk_bytes), st->cost, bench_median(f->tsim, n) * 1e3,
               bench_median(f->tclr, n) * 1e3);
    }
    if (bm->regressor) printf("samples=%d r2_clear=%.4f\n", n, 1 - ssr / sst);
    else printf("samples=%d accuracy_clear=%.4f\n", n, (double)correct / (double)te->shape[0]);
}

static int bench_one(const char *root, const bench_model *bm, int samples, unsigned threads)
{
    veil_array tr = {0}, te = {0}, lab = {0};
    form f[2];
    memset(f, 0, sizeof f);
    int rc = 1, made = 0;
    int64_t *q = NULL;
    double *y = NULL;
    if (!load(root, bm->dir, "train.npy", &tr) || !load(root, bm->dir, "test.npy", &te) ||
        !load(root, bm->dir, "labels.npy", &lab))
        goto out;
    veil_model_options o;
    veil_model_options_default(&o);
    o.qat = bm->qat;
    o.n_bits.op_inputs = o.n_bits.op_weights = bm->n_bits;
    o.rounding_bits = bm->rounding;
    o.rounding_method = bm->exact ? VEIL_ROUNDING_EXACT : VEIL_ROUNDING_APPROXIMATE;
    if (bm->qat) o.n_bits.model_inputs = o.n_bits.model_outputs = 4;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/model.onnx", root, bm->dir);
    int n = samples < te.shape[0] ? samples : (int)te.shape[0];
    for (int single = 0; single < 2; single++, made++) {
        veil_model_options os = o;
        os.single_precision = single;
        if (!form_new(&f[single], p, &tr, &os, n)) goto out;
    }
    int64_t isz = tr.size / tr.shape[0], most = 0;
    for (int k = 0; k < 2; k++) {
        int64_t w = veil_model_input_size(f[k].m) + veil_model_quantized_output_size(f[k].m);
        if (veil_model_output_size(f[k].m) > w) w = veil_model_output_size(f[k].m);
        if (w > most) most = w;
    }
    q = malloc(sizeof(int64_t) * (size_t)most);
    y = malloc(sizeof(double) * (size_t)most);
    if (!q || !y) goto out;
    for (int i = 0; i < n; i++) /* the two forms in turn, sample by sample */
        for (int k = 0; k < 2; k++)
            if (!form_sample(&f[k], te.data + i * isz, i, threads, q, y, bm->name)) goto out;
    for (int k = 0; k < 2; k++) form_print(&f[k], bm, k, n, &te, &lab);
    double kb1 = (double)(f[1].st.bsk_bytes + f[1].st.ksk_bytes);
    double kr = kb1 > 0 ? (double)(f[0].st.bsk_bytes + f[0].st.ksk_bytes) / kb1 : 1;
    printf("model=%s keys_ratio=%.3f cost_ratio=%.3f", bm->name, kr, f[0].st.cost / f[1].st.cost);
    if (f[0].run && f[1].run)
        printf(" speedup=%.2f (single execute_s / partitioned execute_s, medians of the same run)",
               bench_median(f[1].trun, n) / bench_median(f[0].trun, n));
    printf("\n");
    fflush(stdout);
    rc = 0;
out:
    free(q), free(y);
    for (int k = 0; k < made && k < 2; k++) form_free(&f[k]);
    veil_array_free(&tr), veil_array_free(&te), veil_array_free(&lab);
    return rc;
}

static int bench_ranks(const char *root, const char *only, int samples, unsigned threads, int R, char **argv0);

int veil_bench_models(int argc, char **argv)
{
    const char *root = VEIL_SOURCE_DIR "/models", *only = NULL;
    int samples = 5, ranks = 0;
    unsigned threads = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: veil bench models [--model NAME] [--samples S] [--threads T] [--models DIR] [--ranks R]\n"
                   "  NAME: breast_cancer_mlp, digits_cnn, digits_pool, digits_qat, digits_qat_exact,\n"
                   "  logreg_breast_cancer, logreg_digits, linreg_diabetes, dt_breast_cancer, rf_breast_cancer,\n"
                   "  gb_breast_cancer, xgb_breast_cancer, rf_diabetes (default: all); S: test samples per model (default 5); T: threads for execute (default: all\n"
                   "  cores); R: spread over R MPI ranks (runs itself under mpirun -np R): per model the run on rank 0\n"
                   "  alone against the spread one, bytes moved per inference and per batch, projected speedups\n");
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
        else if (!strcmp(argv[i], "--ranks")) ranks = atoi(argv[++i]);
        else {
            fprintf(stderr, "veil bench models: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (samples < 1) {
        fprintf(stderr, "veil bench models: --samples must be at least 1\n");
        return 2;
    }
    if (ranks) {
        if (ranks < 1 || ranks > 1024) {
            fprintf(stderr, "veil bench models: --ranks must be in 1..1024\n");
            return 2;
        }
        return bench_ranks(root, only, samples, threads, ranks, argv);
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

/* ---- veil bench models --ranks R: one inference spread over MPI ranks (src/dist/) -------------
 * Re-runs itself under `mpirun --oversubscribe -np R` when not already under MPI. For each model
 * with lookups (partitioned form only), sample by sample in turn in this process: the run on rank
 * 0 alone (spreading switched off, same threads) and the run spread over the R ranks, whose output
 * ciphertexts must be the same bytes. One line per model:
 *   model ranks pbs batches execute_1_s execute_R_s speedup identical bytes_per_inference
 *   bytes_per_lookup key_bytes_once widest_batch rank_lookups rank_compute_s (per rank, a/b/...)
 *   pbs_ms (rank 0's time per lookup on its threads) other_ms (rank 0's time outside batches)
 * then one line per batch of the last inference (lookups, bytes sent and received, ms), and the
 * speedup projected for 8, 32 and 128 ranks from these figures: each batch's lookups cut in R
 * equal shares at the time per lookup rank 0 measured on its share of that batch, rank 0 sending the shares in turn and receiving
 * them at BW (1 GB/s: a 10 Gb/s link) with LAT (50 µs) per message each way, and rank 0's other
 * time, which does not spread. Keys are sent once per rank and left out of it. */
#ifdef VEIL_HAVE_MPI
#include "cli_mpi.h"
#include "veil/dist.h"

static double projected(const veil_dist_stats *s, double other_s, double bytes_per_lookup, int R, double pbs_avg)
{
    const double bw = 1e9, lat = 50e-6;
    double t = other_s;
    for (uint32_t k = 0; k < s->nlog; k++) {
        /* this batch's time per lookup, as rank 0 measured its share (its partition's cost) */
        const double pbs_s = s->log[k].rank0_lookups ? s->log[k].rank0_s / s->log[k].rank0_lookups : pbs_avg;
        const double n = s->log[k].lookups, share = (double)((s->log[k].lookups + (uint32_t)R - 1) / (uint32_t)R);
        const double moved = n * (R - 1) / R * bytes_per_lookup;
        t += share * pbs_s + (R > 1 ? moved / bw + 2.0 * (R - 1) * lat : 0);
    }
    return t;
}

static int ranks_one(const char *root, const bench_model *bm, int samples, unsigned threads, int R)
{
    veil_array tr = {0}, te = {0}, lab = {0};
    form f;
    memset(&f, 0, sizeof f);
    int rc = 1, made = 0;
    int64_t *q = NULL;
    double *t1 = NULL, *tR = NULL;
    veil_dist *d = cli_mpi_dist();
    if (!load(root, bm->dir, "train.npy", &tr) || !load(root, bm->dir, "test.npy", &te) ||
        !load(root, bm->dir, "labels.npy", &lab))
        goto out;
    veil_model_options o;
    veil_model_options_default(&o);
    o.qat = bm->qat;
    o.n_bits.op_inputs = o.n_bits.op_weights = bm->n_bits;
    o.rounding_bits = bm->rounding;
    o.rounding_method = bm->exact ? VEIL_ROUNDING_EXACT : VEIL_ROUNDING_APPROXIMATE;
    if (bm->qat) o.n_bits.model_inputs = o.n_bits.model_outputs = 4;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/model.onnx", root, bm->dir);
    int n = samples < te.shape[0] ? samples : (int)te.shape[0];
    if (!form_new(&f, p, &tr, &o, n)) goto out;
    made = 1;
    if (f.st.pbs_count == 0) { /* leveled: nothing to spread */
        rc = 0;
        goto out;
    }
    if (!f.run) {
        printf("model=%s ranks=%d skipped (its keys would not fit in memory)\n", bm->name, R);
        rc = 0;
        goto out;
    }
    const veil_circuit *c = veil_model_circuit(f.m);
    int64_t isz = tr.size / tr.shape[0], qsz = veil_model_input_size(f.m) + veil_model_quantized_output_size(f.m);
    q = malloc(sizeof(int64_t) * (size_t)qsz);
    t1 = malloc(sizeof(double) * (size_t)n);
    tR = malloc(sizeof(double) * (size_t)n);
    if (!q || !t1 || !tR) goto out;
    int identical = 1;
    veil_dist_stats s;
    uint64_t bytes = 0, key_bytes = 0;
    double wall = 0, batch_wall = 0;
    for (int i = -1; i < n; i++) { /* i = -1: a warm-up spread run, which sends the keys */
        int64_t *in[VEIL_MODEL_MAX_IO];
        veil_circuit_io_split(c, 0, q, in, VEIL_MODEL_MAX_IO);
        veil_ciphertexts *ct = NULL, *r1 = NULL, *r2 = NULL;
        veil_status st = veil_model_quantize_input(f.m, te.data + (i < 0 ? 0 : i) * isz, q);
        if (st == VEIL_OK) st = veil_circuit_encrypt(c, f.sk, (const int64_t *const *)in, NULL, &ct);
        double a = bench_now_s();
        if (st == VEIL_OK && i >= 0) {
            veil_runtime_set_spread(NULL, NULL); /* rank 0 alone */
            st = veil_circuit_run(c, f.ek, ct, threads, &r1);
            veil_dist_install(d);
        }
        double b = bench_now_s();
        veil_dist_reset_stats(d);
        if (st == VEIL_OK) st = veil_circuit_run(c, f.ek, ct, threads, &r2);
        double e = bench_now_s();
        veil_dist_get_stats(d, &s);
        if (st == VEIL_OK && i >= 0) {
            uint8_t *b1 = NULL, *b2 = NULL;
            size_t l1 = 0, l2 = 0;
            if (veil_ciphertexts_serialize(c, r1, &b1, &l1) != VEIL_OK || veil_ciphertexts_serialize(c, r2, &b2, &l2) != VEIL_OK ||
                l1 != l2 || memcmp(b1, b2, l1) != 0)
                identical = 0;
            veil_free(b1), veil_free(b2);
            t1[i] = b - a, tR[i] = e - b;
            bytes += s.bytes_sent + s.bytes_received - s.key_bytes;
            wall += e - b, batch_wall += s.wall_s;
        } else if (st == VEIL_OK)
            key_bytes = s.key_bytes;
        veil_ciphertexts_free(ct), veil_ciphertexts_free(r1), veil_ciphertexts_free(r2);
        if (st != VEIL_OK) {
            fprintf(stderr, "veil bench models: %s: %s%s%s\n", bm->name, veil_status_str(st),
                    veil_dist_failure(d) ? ": " : "", veil_dist_failure(d) ? veil_dist_failure(d) : "");
            goto out;
        }
    }
    /* s: the last inference's */
    uint32_t widest = 0;
    uint64_t remote = 0;
    for (uint32_t k = 0; k < s.nlog; k++)
        if (s.log[k].lookups > widest) widest = s.log[k].lookups;
    for (int r = 1; r < s.ranks; r++) remote += s.rank_lookups[r];
    const double m1 = bench_median(t1, n), mR = bench_median(tR, n);
    const double pbs_s = s.rank_lookups[0] ? s.rank_compute_s[0] / (double)s.rank_lookups[0] : 0;
    const double per_inf = (double)bytes / n, bpl = remote ? (double)(s.bytes_sent + s.bytes_received) / (double)remote : 0;
    const double other_s = wall / n - batch_wall / n > 0 ? wall / n - batch_wall / n : 0;
    printf("model=%s ranks=%d pbs=%zu batches=%u execute_1_s=%.4f execute_%d_s=%.4f speedup=%.2f identical=%s "
           "bytes_per_inference=%.0f bytes_per_lookup=%.0f key_bytes_once=%llu widest_batch=%u rank_lookups=",
           bm->name, R, f.st.pbs_count, s.nlog, m1, R, mR, m1 / mR, identical ? "yes" : "NO", per_inf, bpl,
           (unsigned long long)key_bytes, widest);
    for (int r = 0; r < s.ranks; r++) printf("%s%llu", r ? "/" : "", (unsigned long long)s.rank_lookups[r]);
    printf(" rank_compute_s=");
    for (int r = 0; r < s.ranks; r++) printf("%s%.3f", r ? "/" : "", s.rank_compute_s[r]);
    printf(" pbs_ms=%.2f other_ms=%.1f samples=%d\n", pbs_s * 1e3, other_s * 1e3, n);
    for (uint32_t k = 0; k < s.nlog; k++)
        printf("  batch %u: partition %u, %u lookups, sent %llu bytes, received %llu bytes, %.1f ms (%.1f waiting)\n", k,
               s.log[k].part, s.log[k].lookups, (unsigned long long)s.log[k].sent, (unsigned long long)s.log[k].received,
               s.log[k].wall_s * 1e3, s.log[k].wait_s * 1e3);
    const double base = projected(&s, other_s, bpl, 1, pbs_s);
    printf("  projected (1 thread per rank, 1 GB/s, 50 us): time_1=%.3f s", base);
    const int Rs[5] = {2, 8, 32, 128, 1024};
    for (int k = 0; k < 5; k++) {
        double tk = projected(&s, other_s, bpl, Rs[k], pbs_s);
        printf(" R=%d: %.3f s (x%.1f)", Rs[k], tk, base / tk);
    }
    printf("; limit: widest batch %u lookups, so at most x%.1f from spreading alone\n", widest,
           base / projected(&s, other_s, 0, (int)widest, pbs_s));
    fflush(stdout);
    rc = identical ? 0 : 1;
out:
    free(q), free(t1), free(tR);
    if (made) form_free(&f);
    veil_array_free(&tr), veil_array_free(&te), veil_array_free(&lab);
    return rc;
}
#endif

/* under MPI: every model with lookups; not under MPI: this command again under mpirun -np R */
static int bench_ranks(const char *root, const char *only, int samples, unsigned threads, int R, char **argv0)
{
#ifndef VEIL_HAVE_MPI
    (void)root, (void)only, (void)samples, (void)threads, (void)R, (void)argv0;
    fprintf(stderr, "veil bench models: --ranks needs MPI, which this build lacks (scripts/install-deps)\n");
    return 2;
#else
    if (!cli_mpi_active()) {
        char self[4096], rs[16], ss[16], ts[16];
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        if (k <= 0) return 1;
        self[k] = 0;
        snprintf(rs, sizeof rs, "%d", R), snprintf(ss, sizeof ss, "%d", samples), snprintf(ts, sizeof ts, "%u", threads);
        char *args[32];
        int a = 0;
        args[a++] = "mpirun", args[a++] = "--oversubscribe", args[a++] = "-np", args[a++] = rs, args[a++] = self;
        args[a++] = "bench", args[a++] = "models", args[a++] = "--ranks", args[a++] = rs, args[a++] = "--samples";
        args[a++] = ss, args[a++] = "--threads", args[a++] = ts, args[a++] = "--models", args[a++] = (char *)root;
        if (only) args[a++] = "--model", args[a++] = (char *)only;
        args[a] = NULL;
        if (geteuid() == 0) { /* Open MPI refuses root unless told twice */
            setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
            setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
        }
        fprintf(stderr, "veil bench models: running under mpirun --oversubscribe -np %d\n", R);
        execvp("mpirun", args);
        fprintf(stderr, "veil bench models: cannot run mpirun (scripts/install-deps installs openmpi-bin)\n");
        return 2;
    }
    (void)argv0;
    veil_dist *d = cli_mpi_dist();
    if (veil_dist_size(d) != R) {
        fprintf(stderr, "veil bench models: --ranks %d, but mpirun started %d\n", R, veil_dist_size(d));
        return 2;
    }
    int rc = 0, ran = 0;
    for (size_t k = 0; k < sizeof MODELS / sizeof *MODELS; k++)
        if ((!only || !strcmp(only, MODELS[k].name)) && !strstr(MODELS[k].name, "_auto"))
            rc |= ranks_one(root, &MODELS[k], samples, threads, R), ran++;
    if (!ran) {
        fprintf(stderr, "veil bench models: unknown model '%s'\n", only);
        return 2;
    }
    return rc;
#endif
}
