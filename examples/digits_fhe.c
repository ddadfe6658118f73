/* The demo: a handwritten-digit classifier run on encrypted images.
 *
 * Compiles the bundled Brevitas 4-bit quantization-aware MLP (models/digits_qat, 8×8 digits from
 * scikit-learn), saves its client and server bundles, generates keys on the client side, and for
 * a few test images: quantizes and encrypts (client), evaluates on ciphertexts with the evaluation
 * keys only (server), decrypts and dequantizes (client). Prints each image, the prediction, the
 * label and the timings.
 *
 * Usage: digits_fhe [MODELS_DIR] [IMAGES]   (defaults: the source tree's models/, 4 images) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "veil/model.h"
#include "veil/npy.h"

#ifndef VEIL_SOURCE_DIR
#define VEIL_SOURCE_DIR "."
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int argmax(const double *y, int n)
{
    int a = 0;
    for (int k = 1; k < n; k++)
        if (y[k] > y[a]) a = k;
    return a;
}

static void show(const double *img)
{
    static const char shades[] = " .:-=+*#%@";
    for (int r = 0; r < 8; r++) {
        printf("    ");
        for (int c = 0; c < 8; c++) {
            int s = (int)(img[r * 8 + c] * 9.99);
            s = s < 0 ? 0 : s > 9 ? 9 : s;
            printf("%c%c", shades[s], shades[s]);
        }
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : VEIL_SOURCE_DIR "/models";
    int nimg = argc > 2 ? atoi(argv[2]) : 4;
    char p[1024];
    veil_array tr = {0}, te = {0}, lab = {0};
    int rc = 1;
    veil_model *m = NULL;
    veil_secret_key *sk = NULL;
    veil_eval_keys *ek = NULL;
    snprintf(p, sizeof p, "%s/digits_qat/train.npy", root);
    if (veil_npy_load(p, &tr) != VEIL_OK) goto npy_fail;
    snprintf(p, sizeof p, "%s/digits_qat/test.npy", root);
    if (veil_npy_load(p, &te) != VEIL_OK) goto npy_fail;
    snprintf(p, sizeof p, "%s/digits_qat/labels.npy", root);
    if (veil_npy_load(p, &lab) != VEIL_OK) goto npy_fail;
    if (nimg < 1 || nimg > te.shape[0]) nimg = 4;

    /* 1. compile (developer side) */
    veil_model_options o;
    veil_model_options_default(&o);
    o.qat = 1;
    o.n_bits.model_inputs = o.n_bits.model_outputs = 4;
    o.rounding_bits = 6;
    snprintf(p, sizeof p, "%s/digits_qat/model.onnx", root);
    double t0 = now();
    if (veil_model_compile_file(p, tr.data, (size_t)tr.shape[0], 64, &o, &m) != VEIL_OK) {
        fprintf(stderr, "digits_fhe: %s\n", veil_model_last_error());
        goto out;
    }
    const veil_circuit *c = veil_model_circuit(m);
    veil_circuit_stats s;
    veil_circuit_get_stats(c, &s);
    printf("compiled %s in %.3f s: max bit-width %u, %zu PBS per image, parameters %s\n", p, now() - t0,
           veil_model_max_bit_width(m), s.pbs_count, veil_circuit_params(c)->name);
    if (veil_model_save(m, "digits_fhe.model") != VEIL_OK) {
        fprintf(stderr, "digits_fhe: %s\n", veil_model_last_error());
        goto out;
    }
    printf("bundles: digits_fhe.model/client.veil (client), digits_fhe.model/server.veil (server)\n");

    /* 2. keys (client side): the secret key stays here, the evaluation keys go to the server */
    t0 = now();
    if (veil_circuit_keygen(c, NULL, &sk, &ek) != VEIL_OK) {
        fprintf(stderr, "digits_fhe: key generation failed\n");
        goto out;
    }
    uint8_t *ekb = NULL;
    size_t ekn = 0;
    if (veil_eval_keys_serialize(ek, 1, &ekb, &ekn) != VEIL_OK) goto out;
    veil_free(ekb);
    printf("keygen: %.2f s; evaluation keys to send: %.1f MB compressed\n\n", now() - t0, (double)ekn / 1e6);

    /* 3. a few images, encrypted end to end */
    int correct = 0;
    double te_sum = 0, tr_sum = 0, td_sum = 0;
    for (int i = 0; i < nimg; i++) {
        const double *x = te.data + (int64_t)i * 64;
        int64_t q[64], qo[10];
        double y[10];
        const int64_t *ins[1] = {q};
        int64_t *outs[1] = {qo};
        veil_ciphertexts *ct = NULL, *res = NULL;
        double a = now();
        veil_status st = veil_model_quantize_input(m, x, q);
        if (st == VEIL_OK) st = veil_circuit_encrypt(c, sk, ins, NULL, &ct);
        double b = now();
        if (st == VEIL_OK) st = veil_circuit_run(c, ek, ct, 0, &res); /* the server's part */
        double d = now();
        if (st == VEIL_OK) st = veil_circuit_decrypt(c, sk, res, outs);
        if (st == VEIL_OK) st = veil_model_dequantize_output(m, qo, y);
        double e = now();
        veil_ciphertexts_free(ct), veil_ciphertexts_free(res);
        if (st != VEIL_OK) {
            fprintf(stderr, "digits_fhe: image %d: %s\n", i, veil_status_str(st));
            goto out;
        }
        int pred = argmax(y, 10), label = (int)lab.data[i];
        correct += pred == label;
        te_sum += b - a, tr_sum += d - b, td_sum += e - d;
        printf("image %d:\n", i);
        show(x);
        printf("    prediction %d, label %d %s   (encrypt %.1f ms, FHE run %.2f s, decrypt %.1f ms)\n\n", pred, label,
               pred == label ? "ok" : "WRONG", (b - a) * 1e3, d - b, (e - d) * 1e3);
    }
    printf("%d/%d correct; mean per image: encrypt %.1f ms, FHE run %.2f s, decrypt %.1f ms\n", correct, nimg,
           te_sum / nimg * 1e3, tr_sum / nimg, td_sum / nimg * 1e3);
    rc = 0;
    goto out;
npy_fail:
    fprintf(stderr, "digits_fhe: %s\n", veil_npy_last_error());
out:
    veil_secret_key_free(sk);
    veil_eval_keys_free(ek);
    veil_model_free(m);
    veil_array_free(&tr), veil_array_free(&te), veil_array_free(&lab);
    return rc;
}
