/* veil encrypt DIR --keys KDIR --input X.npy [--input X2.npy ...] [--sample I] -o CT: one sample
 * (every input's, in the model's order, or one .npz of them) quantized and encrypted under the
 * client's secret key, as the compressed ciphertexts a server takes. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_io.h"
#include "commands.h"
#include "veil/client.h"
#include "veil/npy.h"

int veil_cmd_encrypt(int argc, char **argv)
{
    const char *dir = NULL, *keys = NULL, *input[VEIL_MODEL_MAX_IO], *out = NULL, *v, *pfile = NULL;
    int nin = 0;
    long sample = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: veil encrypt DIR --keys KDIR --input X.npy [--sample I] -o CT\n"
                   "  quantizes sample I (default 0) of X.npy and encrypts it with KDIR/secret.key (veil keygen);\n"
                   "  a model of several inputs takes one --input per input, in its order, or one .npz;\n"
                   "  --passphrase-file F reads a secret.key sealed under the passphrase in F\n");
            return 0;
        }
        if (!strcmp(a, "--keys")) {
            if (!(keys = cli_value("encrypt", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--passphrase-file")) {
            if (!(pfile = cli_value("encrypt", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--input")) {
            if (nin == VEIL_MODEL_MAX_IO) {
                fprintf(stderr, "veil encrypt: at most %d --input files\n", VEIL_MODEL_MAX_IO);
                return 2;
            }
            if (!(input[nin++] = cli_value("encrypt", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "-o")) {
            if (!(out = cli_value("encrypt", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--sample")) {
            if (!(v = cli_value("encrypt", argc, argv, &i)) || !cli_int("encrypt", a, v, 0, 1L << 40, &sample)) return 2;
        } else if (!dir && a[0] != '-') {
            dir = a;
        } else {
            fprintf(stderr, "veil encrypt: unknown argument '%s'\n", a);
            return 2;
        }
    }
    if (!dir || !keys || !nin || !out) {
        fprintf(stderr, "usage: veil encrypt DIR --keys KDIR --input X.npy [--sample I] -o CT\n");
        return 2;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/client.veil", dir);
    veil_client *c = NULL;
    veil_array x = {0};
    uint8_t *ct = NULL;
    size_t len = 0;
    int rc = 1;
    if (!cli_open_client("encrypt", path, keys, pfile, &c)) goto done;
    int64_t isz = veil_model_input_size(veil_client_model(c));
    if (cli_load_inputs("encrypt", input, nin, veil_client_model(c), NULL, &x) != VEIL_OK) goto done;
    if (sample >= x.shape[0]) {
        fprintf(stderr, "veil encrypt: %s: no sample %ld (%lld samples)\n", input[0], sample, (long long)x.shape[0]);
        goto done;
    }
    if (veil_client_quantize_encrypt_serialize(c, x.data + sample * isz, &ct, &len) != VEIL_OK) {
        fprintf(stderr, "veil encrypt: %s\n", veil_client_last_error());
        goto done;
    }
    if (veil_file_write_atomic(out, ct, len, 0644) != VEIL_OK) {
        fprintf(stderr, "veil encrypt: %s: cannot write\n", out);
        goto done;
    }
    printf("encrypted sample %ld into %s (%zu bytes)\n", sample, out, len);
    rc = 0;
done:
    veil_free(ct);
    veil_array_free(&x);
    veil_client_free(c);
    return rc;
}
