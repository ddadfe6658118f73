/* veil decrypt DIR --keys KDIR --input OUT [-o Y.npy]: the server's answer decrypted and
 * dequantized (with the model's client-side post-processing); prints the values and the argmax. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_io.h"
#include "commands.h"
#include "veil/client.h"
#include "veil/npy.h"

int veil_cmd_decrypt(int argc, char **argv)
{
    const char *dir = NULL, *keys = NULL, *input = NULL, *out[VEIL_MODEL_MAX_IO], *pfile = NULL;
    int nout = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: veil decrypt DIR --keys KDIR --input OUT [-o Y.npy ...]\n"
                   "  decrypts and dequantizes OUT (veil run) with KDIR/secret.key; prints the outputs and the\n"
                   "  class the first one names; -o once per model output; --passphrase-file F reads a secret.key\n"
                   "  sealed under the passphrase in F\n");
            return 0;
        }
        if (!strcmp(a, "--keys")) {
            if (!(keys = cli_value("decrypt", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--passphrase-file")) {
            if (!(pfile = cli_value("decrypt", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "--input")) {
            if (!(input = cli_value("decrypt", argc, argv, &i))) return 2;
        } else if (!strcmp(a, "-o")) {
            if (nout == VEIL_MODEL_MAX_IO) {
                fprintf(stderr, "veil decrypt: at most %d -o\n", VEIL_MODEL_MAX_IO);
                return 2;
            }
            if (!(out[nout++] = cli_value("decrypt", argc, argv, &i))) return 2;
        } else if (!dir && a[0] != '-') {
            dir = a;
        } else {
            fprintf(stderr, "veil decrypt: unknown argument '%s'\n", a);
            return 2;
        }
    }
    if (!dir || !keys || !input) {
        fprintf(stderr, "usage: veil decrypt DIR --keys KDIR --input OUT [-o Y.npy ...]\n");
        return 2;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/client.veil", dir);
    veil_client *c = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    veil_array y = {0};
    int rc = 1;
    if (!cli_open_client("decrypt", path, keys, pfile, &c)) goto done;
    if (veil_file_read_all(input, (size_t)1 << 30, &buf, &len) != VEIL_OK) {
        fprintf(stderr, "veil decrypt: cannot read %s\n", input);
        goto done;
    }
    const veil_model *m = veil_client_model(c);
    if (nout && !cli_check_outputs("decrypt", out, nout, m)) goto done;
    y.size = veil_model_output_size(m);
    y.ndim = 1, y.shape[0] = y.size;
    if (!(y.data = veil_malloc(sizeof(double) * (size_t)y.size))) goto done;
    if (veil_client_deserialize_decrypt_dequantize(c, buf, len, y.data) != VEIL_OK) {
        fprintf(stderr, "veil decrypt: %s: %s\n", input, veil_client_last_error());
        goto done;
    }
    printf("outputs:");
    for (int64_t k = 0; k < y.size; k++) printf(" %.6g", y.data[k]);
    printf("\nargmax=%lld\n", (long long)cli_predicted_class(y.data, veil_model_output_size_at(m, 0)));
    if (nout && cli_save_outputs("decrypt", out, nout, m, y.data, 1) != VEIL_OK) goto done;
    rc = 0;
done:
    veil_array_free(&y);
    veil_free(buf);
    veil_client_free(c);
    return rc;
}
