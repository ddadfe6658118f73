/* The scikit-learn and XGBoost models of models/ (made by models/train.py, exported by skl2onnx
 * and onnxmltools as ONNX-ML operators), compiled with veil's default options:
 *  - the float import equals onnxruntime: probabilities (predictions) within 1e-4, labels equal;
 *  - a linear model is leveled: no lookups, no evaluation keys; a tree ensemble has one lookup per
 *    internal node and one per leaf (the GEMM form);
 *  - a tree ensemble's client grids, aligned to its thresholds, send no more of the inputset's
 *    comparisons the other way than evenly spread ones (the log says how many: under 1%);
 *  - clear and simulate accuracy (R^2 for a regressor) within one point of scikit-learn's own,
 *    simulate equal to clear on every sample (exact lookups at p_error 2^-40);
 *  - execute (real encryption) equals clear exactly: on 40 samples of a linear model, 20 of each
 *    tree model (VEIL_TREE_EXECUTE_SAMPLES=N runs N of each: a sample takes 0.4-2.5 s on 2
 *    threads, 140 s for the five);
 *  - the bundles round-trip (labels, base values and post transforms included); the client and
 *    server objects of a deployment give clear's outputs (the linear models without evaluation
 *    keys; the decision tree with them).
 *  - rf_diabetes at the defaults warns, naming the trees' bits; raise_log2_N gives its comparisons
 *    7 bits at N = 2^14, within the 2% relative error.
 * Usage: ml_test_sklearn [MODEL ... | raise]; VEIL_MODELS_DIR overrides the models folder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "params.h"
#include "veil/client.h"
#include "veil/model.h"
#include "veil/npy.h"
#include "veil/server.h"

#ifndef VEIL_SOURCE_DIR
#define VEIL_SOURCE_DIR "."
#endif

typedef struct {
    const char *name;
    int classifier; /* outputs: label, probabilities; else one output, the predictions */
    const char *describe; /* the client-side post-processing veil_model_describe names */
    size_t pbs;           /* lookups per inference */
    int execute;          /* samples executed (0: every one up to 40) */
    double max_drop;      /* clear and simulate at most this far below scikit-learn's score */
} sk_case;

static int load(const char *dir, const char *file, veil_array *a)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    veil_status st = veil_npy_load(p, a);
    CHECK(st == VEIL_OK, "%s", veil_npy_last_error());
    return st == VEIL_OK;
}

static double read_score(const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "%s/sklearn.txt", dir);
    FILE *f = fopen(p, "r");
    double v = NAN;
    CHECK(f != NULL, "cannot open %s", p);
    if (f) {
        CHECK(fscanf(f, "%lf", &v) == 1, "%s holds no number", p);
        fclose(f);
    }
    return v;
}

/* accuracy of the labels (classifier) or R^2 of the predictions (regressor), of output 0 */
static double score(const sk_case *sc, const double *pred, int64_t stride, const veil_array *lab)
{
    int64_t n = lab->size;
    if (sc->classifier) {
        int64_t ok = 0;
        for (int64_t i = 0; i < n; i++) ok += pred[i * stride] == lab->data[i];
        return (double)ok / (double)n;
    }
    double mean = 0, ssr = 0, sst = 0;
    for (int64_t i = 0; i < n; i++) mean += lab->data[i] / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double d = lab->data[i] - pred[i * stride], t = lab->data[i] - mean;
        ssr += d * d, sst += t * t;
    }
    return 1 - ssr / sst;
}

static void run_case(const char *root, const sk_case *sc)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/%s", root, sc->name);
    veil_array tr, te, lab, ref, ref_label = {0};
    if (!load(dir, "train.npy", &tr) || !load(dir, "test.npy", &te) || !load(dir, "labels.npy", &lab) ||
        !load(dir, "ort.npy", &ref) || (sc->classifier && !load(dir, "ort_label.npy", &ref_label)))
        return;
    double sk = read_score(dir);
    veil_model_options o;
    veil_model_options_default(&o);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    veil_model *m = NULL;
    veil_status st = veil_model_compile_file(path, tr.data, (size_t)tr.shape[0], (size_t)(tr.size / tr.shape[0]), &o, &m);
    CHECK(st == VEIL_OK, "%s: %s", sc->name, veil_model_last_error());
    if (st != VEIL_OK) return;
    int64_t n = te.shape[0], isz = veil_model_input_size(m), osz = veil_model_output_size(m);
    int64_t off = sc->classifier ? 1 : 0; /* where the probabilities (predictions) start */
    /* no options: nothing to round (leveled, or 6-bit tree lookups), checked against the float
     * model as the right kind (labels for a classifier, relative error for a regressor) */
    veil_model_accuracy acc;
    veil_model_get_accuracy(m, &acc);
    printf("%s: %s", sc->name, veil_model_compile_log(m));
    CHECK(acc.checked && acc.classifier == sc->classifier && strstr(veil_model_compile_log(m), "nothing to round") &&
              (sc->classifier ? acc.agreement >= 0.98 : acc.rel_error < 0.15),
          "%s: the compile-time check (%s, agreement %.4f, relative error %.4f)", sc->name,
          acc.classifier ? "classifier" : "regressor", acc.agreement, acc.rel_error);
    if (sc->pbs) {
        /* a tree ensemble's grids, aligned to its thresholds, send no more inputset comparisons the
         * wrong way than evenly spread ones, and the log says how many */
        const char *at = strstr(veil_model_compile_log(m), "bit grids aligned to the trees' thresholds: ");
        unsigned long miss = 0, total = 0, even = 0;
        CHECK(at && sscanf(strchr(at, ':') + 2, "%lu of %lu inputset comparisons go the other way than in the float "
                                                "model (%lu on even grids)", &miss, &total, &even) == 3 &&
                  miss <= even && total > 0 && miss * 100 <= total,
              "%s: the log names the comparisons its grids decide otherwise (%lu of %lu; %lu evenly)", sc->name,
              miss, total, even);
    }
    CHECK(isz * n == te.size, "%s: input size %lld", sc->name, (long long)isz);
    CHECK(veil_model_output_count(m) == (sc->classifier ? 2u : 1u), "%s: %zu outputs", sc->name,
          veil_model_output_count(m));
    CHECK((osz - off) * n == ref.size, "%s: output size %lld", sc->name, (long long)osz);
    if (sc->classifier)
        CHECK(!strcmp(veil_model_output_name(m, 0), "label") && !strcmp(veil_model_output_name(m, 1), "probabilities"),
              "%s: outputs label and probabilities", sc->name);
    double *yf = calloc((size_t)(n * osz), sizeof(double)), *yc = calloc((size_t)(n * osz), sizeof(double));
    double *ys = calloc((size_t)(n * osz), sizeof(double)), *ye = calloc((size_t)osz, sizeof(double));
    double maxd = 0;
    int64_t label_eq = 0;
    uint8_t seed[VEIL_SEED_BYTES] = {5};
    CHECK_OK(veil_model_seed_simulation(m, seed));
    for (int64_t i = 0; i < n; i++) {
        const double *x = te.data + i * isz;
        CHECK_OK(veil_model_float_forward(m, x, yf + i * osz));
        for (int64_t k = off; k < osz; k++) {
            double r = ref.data[i * (osz - off) + k - off];
            maxd = fmax(maxd, fabs(yf[i * osz + k] - r) / fmax(1, fabs(r)));
        }
        if (sc->classifier) label_eq += yf[i * osz] == ref_label.data[i];
        CHECK_OK(veil_model_forward(m, VEIL_MODE_CLEAR, x, yc + i * osz));
        CHECK_OK(veil_model_forward(m, VEIL_MODE_SIMULATE, x, ys + i * osz));
    }
    veil_circuit_stats s;
    veil_circuit_get_stats(veil_model_circuit(m), &s);
    double af = score(sc, yf, osz, &lab), ac = score(sc, yc, osz, &lab), as = score(sc, ys, osz, &lab);
    printf("%s: max |float - onnxruntime| %.3g, labels equal on %lld/%lld; %s scikit-learn %.4f float %.4f clear %.4f "
           "simulate %.4f; max bit-width %u, %zu PBS, params %s\n",
           sc->name, maxd, (long long)label_eq, (long long)n, sc->classifier ? "accuracy" : "R^2", sk, af, ac, as,
           veil_model_max_bit_width(m), s.pbs_count, veil_circuit_params(veil_model_circuit(m))->name);
    CHECK(maxd <= 1e-4, "%s: float outputs differ from onnxruntime's by %g", sc->name, maxd);
    if (sc->classifier) CHECK(label_eq == n, "%s: float labels equal onnxruntime's on %lld/%lld", sc->name,
                              (long long)label_eq, (long long)n);
    CHECK(fabs(af - sk) <= 1e-6, "%s: the float import scores %.6f, scikit-learn %.6f (sklearn.txt: 6 decimals)", sc->name, af, sk);
    CHECK(ac >= sk - sc->max_drop, "%s: clear %.4f, more than %.1f points below scikit-learn's %.4f", sc->name, ac,
          100 * sc->max_drop, sk);
    CHECK(as >= sk - sc->max_drop, "%s: simulate %.4f, more than %.1f points below scikit-learn's %.4f", sc->name, as,
          100 * sc->max_drop, sk);
    CHECK(s.pbs_count == sc->pbs, "%s: %zu lookups, %zu expected", sc->name, s.pbs_count, sc->pbs);
    /* the comparisons of one feature, and the two leaves of one node, share a bootstrapping */
    if (sc->pbs) {
        printf("%s: %zu lookups in %zu bootstrappings\n", sc->name, s.pbs_count, s.ks_count);
        CHECK(s.ks_count > 0 && s.ks_count < s.pbs_count && (sc->pbs <= 25 || 2 * s.ks_count < s.pbs_count),
              "%s: %zu lookups take %zu bootstrappings (an ensemble: under half)", sc->name, s.pbs_count, s.ks_count);
    }
    int same_cs = 0;
    for (int64_t i = 0; i < n; i++) same_cs += memcmp(yc + i * osz, ys + i * osz, sizeof(double) * (size_t)osz) == 0;
    CHECK(same_cs == n, "%s: simulate equals clear on %d/%lld samples", sc->name, same_cs, (long long)n);
    char *d = veil_model_describe(m);
    CHECK(d && strstr(d, sc->describe), "%s: describe names %s: %s", sc->name, sc->describe, d ? d : "");
    veil_free(d);

    /* execute: real encryption, exactly clear's outputs (the sanitizer build: one sample of the
     * decision tree) */
    if (!check_quick() || sc->pbs == 25) {
        uint8_t kseed[VEIL_SEED_BYTES] = {3};
        CHECK_OK(veil_model_keygen(m, kseed));
        int ne = sc->execute ? sc->execute : 40, equal = 0;
        const char *env = getenv("VEIL_TREE_EXECUTE_SAMPLES");
        if (sc->pbs && env) ne = atoi(env);
        if (check_quick()) ne = 1;
        if (ne > n) ne = (int)n;
        for (int i = 0; i < ne; i++) {
            CHECK_OK(veil_model_forward(m, VEIL_MODE_EXECUTE, te.data + (int64_t)i * isz, ye));
            equal += memcmp(ye, yc + (int64_t)i * osz, sizeof(double) * (size_t)osz) == 0;
        }
        printf("%s: execute equals clear on %d/%d samples\n", sc->name, equal, ne);
        CHECK(equal == ne, "%s: execute equals clear on %d/%d", sc->name, equal, ne);
    }

    /* bundles, then the client and server objects, with no evaluation keys */
    char tmp[] = "/tmp/veil_sk_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    CHECK_OK(veil_model_save(m, tmp));
    veil_model *l = NULL;
    CHECK(veil_model_load(tmp, &l) == VEIL_OK, "%s: load: %s", sc->name, veil_model_last_error());
    int same = 0;
    for (int64_t i = 0; l && i < n; i++) {
        CHECK_OK(veil_model_forward(l, VEIL_MODE_CLEAR, te.data + i * isz, ye));
        same += memcmp(ye, yc + i * osz, sizeof(double) * (size_t)osz) == 0;
    }
    CHECK(same == n, "%s: the loaded bundle's clear outputs equal the compiled model's on %d/%lld", sc->name, same,
          (long long)n);
    veil_model_free(l);
    uint8_t *cb = NULL, *sb = NULL, *req = NULL, *resp = NULL, *ekb = NULL;
    size_t cl = 0, sl = 0, rl = 0, pl = 0, ekl = 0;
    veil_client *cli = NULL;
    veil_server_model *srv = NULL;
    CHECK_OK(veil_model_serialize(m, 0, &cb, &cl));
    CHECK_OK(veil_model_serialize(m, 1, &sb, &sl));
    CHECK_OK(veil_client_from_bytes(cb, cl, &cli));
    CHECK_OK(veil_server_model_from_bytes(sb, sl, &srv));
    if (cli && srv) {
        uint8_t kseed[VEIL_SEED_BYTES] = {8};
        CHECK_OK(veil_client_keygen(cli, kseed));
        veil_eval_keys *sek = NULL;
        if (sc->pbs == 0) {
            CHECK(veil_client_eval_keys(cli, &ekb, &ekl) == VEIL_ERR_UNSUPPORTED &&
                      strstr(veil_client_last_error(), "needs no evaluation keys"),
                  "%s: no evaluation keys to send: %s", sc->name, veil_client_last_error());
        } else if (!check_quick() && sc->pbs <= 25) {
            CHECK_OK(veil_client_eval_keys(cli, &ekb, &ekl));
            if (ekb) CHECK_OK(veil_server_keys_load(srv, ekb, ekl, &sek));
        }
        int agree = 0, nreq = sc->pbs == 0 ? 3 : check_quick() || sc->pbs > 25 ? 0 : 1;
        for (int64_t i = 0; i < nreq; i++) {
            CHECK_OK(veil_client_quantize_encrypt_serialize(cli, te.data + i * isz, &req, &rl));
            CHECK(veil_server_run(srv, sek, req, rl, 0, &resp, &pl) == VEIL_OK, "%s: server run: %s", sc->name,
                  veil_server_last_error());
            if (resp) CHECK_OK(veil_client_deserialize_decrypt_dequantize(cli, resp, pl, ye));
            agree += resp && memcmp(ye, yc + i * osz, sizeof(double) * (size_t)osz) == 0;
            veil_free(req), veil_free(resp);
            req = resp = NULL;
        }
        CHECK(agree == nreq, "%s: client, server and client again give clear's outputs on %d/%d", sc->name, agree, nreq);
        veil_eval_keys_free(sek);
    }
    veil_client_free(cli);
    veil_server_model_free(srv);
    veil_free(cb), veil_free(sb), veil_free(ekb);
    check_remove_bundles(tmp);
    free(yf), free(yc), free(ys), free(ye);
    veil_model_free(m);
    veil_array_free(&tr), veil_array_free(&te), veil_array_free(&lab), veil_array_free(&ref);
    veil_array_free(&ref_label);
}

/* rf_diabetes at the defaults: 6-bit comparisons miss the regressor's 2% relative error, and the
 * warning names what helps (the trees' bits, not a rounding); with raise_log2_N 14 the comparisons
 * get 7 bits at N = 2^14 and meet it, and the log says so. Compile only. */
static void check_tree_raise(const char *root)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/rf_diabetes", root);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    veil_array tr;
    if (!load(dir, "train.npy", &tr)) return;
    veil_model_options o;
    veil_model_options_default(&o);
    veil_model *m = NULL, *r = NULL;
    veil_model_accuracy a = {0}, ar = {0};
    const size_t ns = (size_t)tr.shape[0], sz = (size_t)(tr.size / tr.shape[0]);
    CHECK_OK(veil_model_compile_file(path, tr.data, ns, sz, &o, &m));
    if (m) {
        veil_model_get_accuracy(m, &a);
        printf("rf_diabetes at the defaults: relative error %.4f\n", a.rel_error);
        CHECK(a.rel_error > 0.02 && strstr(veil_model_compile_log(m), "warning:") &&
                  strstr(veil_model_compile_log(m), "give the trees' comparisons more bits (--n-bits 7"),
              "the defaults' warning names the trees' bits: %s", veil_model_compile_log(m));
    }
    o.raise_log2_N = 14;
    CHECK_OK(veil_model_compile_file(path, tr.data, ns, sz, &o, &r));
    if (r) {
        veil_model_get_accuracy(r, &ar);
        const char *log = veil_model_compile_log(r);
        printf("rf_diabetes, raise_log2_N 14: relative error %.4f\n%s", ar.rel_error, log);
        unsigned top = top_log2_N(veil_model_circuit(r));
        CHECK(ar.rel_error <= 0.02 && ar.rel_error < a.rel_error / 2 && !strstr(log, "warning:") &&
                  strstr(log, "at 2^14 (the trees' comparisons at one more bit)") && strstr(log, "met at N <= 2^14, kept") &&
                  strstr(log, "on 7-bit grids") && top == 14,
              "raised: 7-bit comparisons at N = 2^%u, relative error %.4f", top, ar.rel_error);
    }
    veil_model_free(m), veil_model_free(r);
    veil_array_free(&tr);
}

int main(int argc, char **argv)
{
    const char *root = getenv("VEIL_MODELS_DIR");
    if (!root) root = VEIL_SOURCE_DIR "/models";
    static const sk_case cases[] = {
        /* binary: two score rows (−w, w), LOGISTIC */
        {"logreg_breast_cancer", 1, "ScoresLabel(2 classes)", 0, 0, 0.01},
        /* 10 classes, multinomial: SOFTMAX, then Normalizer(L1) */
        {"logreg_digits", 1, "ScoresTransform(SOFTMAX), Normalizer(L1)", 0, 0, 0.01},
        {"linreg_diabetes", 0, "output (1, 1)", 0, 0, 0.01},
        /* trees: lookups = internal nodes + leaves */
        /* binary, one score per leaf (class 1's probability): [1 − s, s] */
        {"dt_breast_cancer", 1, "ScoresTransform(NONE, one score of two classes), ScoresLabel(2 classes)", 25, 20, 0.01},
        {"rf_breast_cancer", 1, "ScoresTransform(NONE, one score of two classes), ScoresLabel(2 classes)", 442, 20, 0.01},
        /* binary, one score: base value, [−s, s], LOGISTIC */
        {"gb_breast_cancer", 1, "ScoresTransform(LOGISTIC, base values, one score of two classes)", 300, 20, 0.01},
        {"xgb_breast_cancer", 1, "ScoresTransform(LOGISTIC, base values, one score of two classes)", 206, 20, 0.01},
        /* at 6-bit inputs on grids spread over each feature's range the regressor lost 1.3 points
         * (0.5007 vs 0.5141); on grids aligned to its thresholds (mq_tree_grid) it keeps them */
        {"rf_diabetes", 0, "output (1, 1)", 602, 20, 0.01},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int run = argc < 2;
        for (int a = 1; a < argc; a++) run |= strcmp(argv[a], cases[i].name) == 0;
        if (run) run_case(root, &cases[i]);
    }
    int raise = argc < 2;
    for (int a = 1; a < argc; a++) raise |= strcmp(argv[a], "raise") == 0 || strcmp(argv[a], "rf_diabetes") == 0;
    if (raise) check_tree_raise(root);
    return check_done("ml_test_sklearn");
}
