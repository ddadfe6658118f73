/* veil encrypt DIR --keys KDIR --input X.npy [--sample I] -o CT: one sample quantized and
 * encrypted under the client's secret key, as the compressed ciphertexts a server takes. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "veil/client.h"
#include "veil/npy.h"

int veil_cmd_encrypt(int argc, char **argv)
{
    const char *dir = NULL, *keys = NULL, *input = NULL, *out = NULL, *v;
    long sample = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: veil encrypt DIR --keys KDIR --input X.npy [--sample I] -o CT\n"
                   "  quantizes sample I (default 0) of X.npy and encrypts it with KDIR/secret.key (veil keygen)\n");
            return 0;
        }
        if (!strcmp(a, "--keys")) {
            if (!(keys = cli_value("encrypt", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--input")) {
            if (!(input = cli_value("encrypt", argc, argv, &i))) return 2;
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
    if (!dir || !keys || !input || !out) {
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
    if (veil_client_load(path, &c) != VEIL_OK || veil_client_load_keys(c, keys) != VEIL_OK) {
        fprintf(stderr, "veil encrypt: %s\n", veil_client_last_error());
        goto done;
    }
    int64_t isz = veil_model_input_size(veil_client_model(c));
    if (veil_npy_load(input, &x) != VEIL_OK) {
        fprintf(stderr, "veil encrypt: %s\n", veil_npy_last_error());
        goto done;
    }
    if (x.ndim < 1 || x.size != x.shape[0] * isz || sample >= x.shape[0]) {
        fprintf(stderr, "veil encrypt: %s: no sample %ld of %lld values (shape (N, ...) expected)\n", input, sample,
                (long long)isz);
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
