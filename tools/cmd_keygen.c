/* veil keygen DIR [--keys KDIR]: the client's keys for the model in DIR, from the CSPRNG, kept as
 * veil client keeps them (secret.key with mode 0600, eval.keys compressed, model_id). */
#include <stdio.h>
#include <string.h>

#include "bench_util.h"
#include "cli.h"
#include "cli_io.h"
#include "commands.h"
#include "veil/client.h"

int veil_cmd_keygen(int argc, char **argv)
{
    const char *dir = NULL, *keys = NULL, *pfile = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: veil keygen DIR [--keys KDIR] [--passphrase-file F]\n"
                   "  makes the secret and evaluation keys for the model in DIR into KDIR (default DIR/keys):\n"
                   "  secret.key (mode 0600: it never leaves the client), eval.keys (compressed: for the server)\n"
                   "  --passphrase-file F   seal secret.key under the passphrase in F (scrypt + AES-256-GCM)\n");
            return 0;
        }
        if (!strcmp(argv[i], "--keys")) {
            if (!(keys = cli_value("keygen", argc, argv, &i))) return 2;
        } else if (!strcmp(argv[i], "--passphrase-file")) {
            if (!(pfile = cli_value("keygen", argc, argv, &i))) return 2;
        } else if (!dir && argv[i][0] != '-') {
            dir = argv[i];
        } else {
            fprintf(stderr, "veil keygen: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: veil keygen DIR [--keys KDIR]\n");
        return 2;
    }
    char path[4200], kdir[4200];
    snprintf(path, sizeof path, "%s/client.veil", dir);
    snprintf(kdir, sizeof kdir, "%s", keys ? keys : dir);
    if (!keys) strncat(kdir, "/keys", sizeof kdir - strlen(kdir) - 1);
    veil_client *c = NULL;
    char *pass = NULL;
    size_t pl = 0;
    if (pfile && !cli_read_passphrase("keygen", pfile, &pass, &pl)) return 1;
    double t0 = bench_now_s();
    veil_status st = veil_client_load(path, &c);
    if (st == VEIL_OK && pass) st = veil_client_set_passphrase(c, pass, pl);
    veil_free_secret(pass, pl + 1);
    if (st != VEIL_OK || veil_client_keygen(c, NULL) != VEIL_OK || veil_client_save_keys(c, kdir) != VEIL_OK) {
        fprintf(stderr, "veil keygen: %s\n", veil_client_last_error());
        veil_client_free(c);
        return 1;
    }
    printf("keys for model %s in %s (%.1f s): secret.key (mode 0600%s), %s\n", veil_client_model_id(c), kdir,
           bench_now_s() - t0, pfile ? ", sealed under the passphrase" : "",
           veil_client_needs_eval_keys(c) ? "eval.keys (for the server)" : "no evaluation keys (the model has no lookups)");
    veil_client_free(c);
    return 0;
}
