/* Model bundles (client.veil, server.veil):
 *  - save then load gives the same model: shapes, report, listing, statistics, parameters, and the
 *    same outputs in clear and in simulate (same seed) on the whole test set; execute on a loaded
 *    model predicts as clear (a few samples);
 *  - refusals with a reason: missing files, a client bundle where a server bundle belongs, a client
 *    and a server bundle of two different compilations, every truncation, flipped bytes;
 *  - hostile files with a valid checksum (random mutations, checksum recomputed) either load or
 *    fail cleanly, and a model that loads runs without reading outside its slots (ASan build). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/container.h"
#include "veil/model.h"
#include "veil/npy.h"

#ifndef VEIL_SOURCE_DIR
#define VEIL_SOURCE_DIR "."
#endif

static void load_npy(const char *model, const char *file, veil_array *a)
{
    char p[600];
    snprintf(p, sizeof p, "%s/models/%s/%s", VEIL_SOURCE_DIR, model, file);
    veil_status st = veil_npy_load(p, a);
    CHECK(st == VEIL_OK, "%s: %s", p, veil_npy_last_error());
    if (st != VEIL_OK) exit(1);
}

/* exact: EXACT rounding, so that execute gives clear's integers (approximate rounding lets a value
 * at a midpoint tip, which can turn a tie in the 4-bit outputs into another argmax) */
static veil_model *compile(const char *model, int qat, int rounding, int exact)
{
    char p[600];
    snprintf(p, sizeof p, "%s/models/%s/model.onnx", VEIL_SOURCE_DIR, model);
    veil_array tr;
    load_npy(model, "train.npy", &tr);
    veil_model_options o;
    veil_model_options_default(&o);
    o.qat = qat;
    o.rounding_bits = rounding;
    o.rounding_method = exact ? VEIL_ROUNDING_EXACT : VEIL_ROUNDING_APPROXIMATE;
    if (qat) o.n_bits.model_inputs = o.n_bits.model_outputs = 4;
    veil_model *m = NULL;
    veil_status st = veil_model_compile_file(p, tr.data, (size_t)tr.shape[0], (size_t)(tr.size / tr.shape[0]), &o, &m);
    CHECK(st == VEIL_OK, "%s: %s", model, veil_model_last_error());
    veil_array_free(&tr);
    if (st != VEIL_OK) exit(1);
    return m;
}

static int argmax(const double *y, int64_t n)
{
    int a = 0;
    for (int64_t k = 1; k < n; k++)
        if (y[k] > y[a]) a = (int)k;
    return a;
}

/* Same outputs in clear and simulate (seeded) on the whole test set. */
static void same_outputs(veil_model *a, veil_model *b, const veil_array *te)
{
    int64_t isz = veil_model_input_size(a), osz = veil_model_output_size(a);
    double *ya = malloc(sizeof(double) * (size_t)osz * 2), *yb = ya + osz;
    uint8_t seed[VEIL_SEED_BYTES] = {7};
    CHECK_OK(veil_model_seed_simulation(a, seed));
    CHECK_OK(veil_model_seed_simulation(b, seed));
    int diff[2] = {0, 0};
    for (int64_t i = 0; i < te->shape[0]; i++)
        for (int mode = VEIL_MODE_CLEAR; mode <= VEIL_MODE_SIMULATE; mode++) {
            CHECK_OK(veil_model_forward(a, (veil_mode)mode, te->data + i * isz, ya));
            CHECK_OK(veil_model_forward(b, (veil_mode)mode, te->data + i * isz, yb));
            diff[mode] += memcmp(ya, yb, sizeof(double) * (size_t)osz) != 0;
        }
    CHECK(diff[0] == 0 && diff[1] == 0, "loaded model differs on %d samples in clear, %d in simulate", diff[0], diff[1]);
    free(ya);
}

static size_t file_bytes(const char *path, uint8_t **out)
{
    size_t n = 0;
    CHECK_OK(veil_file_read_all(path, (size_t)1 << 30, out, &n));
    return n;
}

/* Recompute the trailer of a mutated container so that only the semantic checks can refuse it. */
static void fix_checksum(uint8_t *b, size_t n) { veil_sha256(b, n - 32, b + n - 32); }

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

int main(void)
{
    char dir[] = "/tmp/veil_bundle_XXXXXX", dir2[] = "/tmp/veil_bundle2_XXXXXX", path[256], path2[256];
    CHECK(mkdtemp(dir) && mkdtemp(dir2), "mkdtemp");

    /* round trip on the QAT digits model */
    veil_model *m = compile("digits_qat", 1, 6, 1);
    CHECK_OK(veil_model_save(m, dir));
    veil_model *l = NULL;
    veil_status st = veil_model_load(dir, &l);
    CHECK(st == VEIL_OK, "load: %s", veil_model_last_error());
    if (!l) return check_done("ml_test_bundle");
    CHECK(veil_model_input_size(l) == veil_model_input_size(m) && veil_model_output_size(l) == veil_model_output_size(m),
          "sizes");
    CHECK(strcmp(veil_model_report(l), veil_model_report(m)) == 0, "report");
    CHECK(veil_model_max_bit_width(l) == veil_model_max_bit_width(m), "max bit-width");
    const veil_circuit *cm = veil_model_circuit(m), *cl = veil_model_circuit(l);
    CHECK(strcmp(veil_circuit_format(cl), veil_circuit_format(cm)) == 0, "listing");
    CHECK(veil_params_fingerprint(veil_circuit_params(cl)) == veil_params_fingerprint(veil_circuit_params(cm)), "params");
    veil_circuit_stats sm, sl;
    veil_circuit_get_stats(cm, &sm);
    veil_circuit_get_stats(cl, &sl);
    CHECK(memcmp(&sm, &sl, sizeof sm) == 0, "statistics");
    double x0[64];
    CHECK(veil_model_float_forward(l, x0, x0) == VEIL_ERR_UNSUPPORTED, "a loaded model has no float graph");
    veil_array te, lab;
    load_npy("digits_qat", "test.npy", &te);
    load_npy("digits_qat", "labels.npy", &lab);
    same_outputs(m, l, &te);
    if (!check_quick()) {
        uint8_t seed[VEIL_SEED_BYTES] = {3};
        CHECK_OK(veil_model_keygen(l, seed));
        int64_t isz = veil_model_input_size(l), osz = veil_model_output_size(l);
        double ye[10], yc[10];
        int agree = 0;
        for (int i = 0; i < 3; i++) {
            CHECK_OK(veil_model_forward(l, VEIL_MODE_EXECUTE, te.data + i * isz, ye));
            CHECK_OK(veil_model_forward(l, VEIL_MODE_CLEAR, te.data + i * isz, yc));
            agree += argmax(ye, osz) == argmax(yc, osz);
        }
        CHECK(agree == 3, "execute on the loaded model agrees with clear on %d/3", agree);
    }

    /* refusals with a reason */
    veil_model *bad = NULL;
    CHECK(veil_model_load("/nonexistent/veil", &bad) == VEIL_ERR_IO && !bad, "missing directory");
    CHECK(strstr(veil_model_last_error(), "client.veil") != NULL, "names the file: %s", veil_model_last_error());
    uint8_t *client, *server;
    snprintf(path, sizeof path, "%s/client.veil", dir);
    size_t ncl = file_bytes(path, &client);
    snprintf(path, sizeof path, "%s/server.veil", dir);
    size_t nsv = file_bytes(path, &server);
    st = veil_model_deserialize(client, ncl, client, ncl, &bad);
    CHECK(st == VEIL_ERR_BAD_KIND && !bad, "client bundle as server: %s", veil_status_str(st));
    CHECK(strstr(veil_model_last_error(), "this is a client bundle, not a server bundle") != NULL, "%s",
          veil_model_last_error());
    /* another compilation of the same model (other rounding): same interface, other program */
    veil_model *m2 = compile("digits_qat", 1, 5, 0);
    CHECK_OK(veil_model_save(m2, dir2));
    snprintf(path2, sizeof path2, "%s/server.veil", dir2);
    uint8_t *server2;
    size_t nsv2 = file_bytes(path2, &server2);
    st = veil_model_deserialize(client, ncl, server2, nsv2, &bad);
    CHECK(st == VEIL_ERR_PARAMS_MISMATCH && !bad, "pair of two compilations: %s", veil_status_str(st));
    CHECK(strstr(veil_model_last_error(), "different compilations") || strstr(veil_model_last_error(), "other parameters"),
          "%s", veil_model_last_error());
    /* every truncation of the client bundle, a sample of the server bundle's */
    int refused = 0, tries = 0;
    for (size_t n = 0; n < ncl; n++, tries++) refused += veil_model_deserialize(client, n, server, nsv, &bad) != VEIL_OK;
    for (size_t n = 0; n < nsv; n += 1 + nsv / 3000, tries++)
        refused += veil_model_deserialize(client, ncl, server, n, &bad) != VEIL_OK;
    CHECK(refused == tries, "truncations refused: %d/%d", refused, tries);
    /* a flipped byte anywhere: the checksum */
    refused = tries = 0;
    int corrupted = 0;
    uint64_t s = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 300; i++, tries++) {
        size_t pos = (size_t)(rnd(&s) % nsv);
        server[pos] ^= 0x20;
        st = veil_model_deserialize(client, ncl, server, nsv, &bad);
        /* the header or a section length: bad magic, version, kind, truncated; else the checksum */
        refused += st != VEIL_OK;
        corrupted += st == VEIL_ERR_CHECKSUM;
        server[pos] ^= 0x20;
    }
    CHECK(refused == tries && corrupted > tries * 9 / 10, "flipped bytes refused: %d/%d (%d as corrupted)", refused,
          tries, corrupted);
    /* hostile contents with a valid checksum: load or refuse; what loads runs within its slots */
    int loaded = 0, ran = 0;
    int rounds = check_quick() ? 300 : 3000;
    int64_t *q = calloc(4096, sizeof(int64_t));
    for (int i = 0; i < rounds; i++) {
        uint8_t *cb = malloc(ncl), *sb = malloc(nsv);
        memcpy(cb, client, ncl), memcpy(sb, server, nsv);
        int which = (int)(rnd(&s) % 2);
        uint8_t *b = which ? sb : cb;
        size_t n = which ? nsv : ncl;
        for (int k = 0; k < 1 + (int)(rnd(&s) % 4); k++) {
            size_t pos = VEIL_CONTAINER_HEADER_BYTES + (size_t)(rnd(&s) % (n - VEIL_CONTAINER_HEADER_BYTES - 32));
            b[pos] = (uint8_t)rnd(&s);
        }
        fix_checksum(b, n);
        veil_model *h = NULL;
        if (veil_model_deserialize(cb, ncl, sb, nsv, &h) == VEIL_OK) {
            loaded++;
            int64_t isz = veil_model_input_size(h);
            if (isz <= 2048 && veil_model_quantized_output_size(h) <= 2048) {
                ran += veil_model_quantized_forward(h, VEIL_MODE_CLEAR, q, q + 2048) == VEIL_OK;
                ran += veil_model_quantized_forward(h, VEIL_MODE_SIMULATE, q, q + 2048) == VEIL_OK;
            }
            veil_model_free(h);
        }
        free(cb), free(sb);
    }
    printf("hostile bundles: %d of %d loaded, %d runs completed\n", loaded, rounds, ran);
    CHECK(loaded < rounds, "some mutations must be refused");
    free(q);

    /* a scikit-learn classifier's client bundle (client-side Scaler PREX, labels and transforms
     * POSX): hostile contents with a valid checksum load or are refused; what loads quantizes,
     * runs, dequantizes and describes itself within its sizes */
    {
        veil_model *lm = compile("logreg_digits", 0, 0, 0);
        uint8_t *lc = NULL, *ls = NULL;
        size_t nlc = 0, nls = 0;
        CHECK_OK(veil_model_serialize(lm, 0, &lc, &nlc));
        CHECK_OK(veil_model_serialize(lm, 1, &ls, &nls));
        veil_model *back = NULL;
        CHECK(veil_model_deserialize(lc, nlc, ls, nls, &back) == VEIL_OK, "logreg_digits bundles: %s",
              veil_model_last_error());
        char *d = back ? veil_model_describe(back) : NULL;
        CHECK(d && strstr(d, "ScoresLabel(10 classes)") && strstr(d, "ScoresTransform(SOFTMAX), Normalizer(L1)"),
              "logreg_digits describe: %s", d ? d : "");
        veil_free(d);
        veil_model_free(back);
        int lloaded = 0, lran = 0, lrounds = check_quick() ? 300 : 3000;
        double *x = calloc(4096, sizeof(double)), *yv = calloc(4096, sizeof(double));
        int64_t *lq = calloc(8192, sizeof(int64_t));
        for (int i = 0; i < lrounds; i++) {
            uint8_t *cb = malloc(nlc);
            memcpy(cb, lc, nlc);
            for (int k = 0; k < 1 + (int)(rnd(&s) % 4); k++) {
                size_t pos = VEIL_CONTAINER_HEADER_BYTES + (size_t)(rnd(&s) % (nlc - VEIL_CONTAINER_HEADER_BYTES - 32));
                cb[pos] = (uint8_t)rnd(&s);
            }
            fix_checksum(cb, nlc);
            veil_model *h = NULL;
            if (veil_model_deserialize(cb, nlc, ls, nls, &h) == VEIL_OK) {
                lloaded++;
                if (veil_model_input_size(h) <= 4096 && veil_model_quantized_output_size(h) <= 4096 &&
                    veil_model_output_size(h) <= 4096) {
                    int ok = veil_model_quantize_input(h, x, lq) == VEIL_OK &&
                             veil_model_quantized_forward(h, VEIL_MODE_CLEAR, lq, lq + 4096) == VEIL_OK &&
                             veil_model_dequantize_output(h, lq + 4096, yv) == VEIL_OK;
                    lran += ok;
                }
                char *hd = veil_model_describe(h);
                veil_free(hd);
                veil_model_free(h);
            }
            free(cb);
        }
        printf("hostile logreg_digits client bundles: %d of %d loaded, %d runs completed\n", lloaded, lrounds, lran);
        CHECK(lloaded < lrounds, "some mutations must be refused");
        free(x), free(yv), free(lq);
        veil_free(lc), veil_free(ls);
        veil_model_free(lm);
    }

    /* the bundles' sizes, for the note */
    printf("digits_qat: client.veil %zu bytes, server.veil %zu bytes\n", ncl, nsv);
    veil_free(client), veil_free(server), veil_free(server2);
    veil_model_free(m2);
    veil_array_free(&te), veil_array_free(&lab);
    veil_model_free(l);
    veil_model_free(m);
    const char *names[2] = {"client.veil", "server.veil"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s", dir2, names[i]);
        unlink(path);
    }
    rmdir(dir), rmdir(dir2);
    return check_done("ml_test_bundle");
}
