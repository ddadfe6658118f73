/* libFuzzer target: the JSON bodies of the HTTP API. The first byte picks the reader: the
 * server's simulate route (a body {"inputs": [...]} for each served model in turn), or the
 * client's reading of server answers (an {"error": ...} message, an upload's {"key_id": ...}). */
#include <stdint.h>

#include "deploy/deploy.h"
#include "serve_harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    h_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 20)) return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        char msg[400], kid[64];
        veil_deploy_server_error(d, n, 400, msg, sizeof msg);
        if (veil_deploy_key_id(d, n, kid, sizeof kid) && strlen(kid) >= sizeof kid) abort();
        return 0;
    }
    char url[200];
    snprintf(url, sizeof url, "/v1/models/%s/simulate", h_state->models[(data[0] >> 1) % h_state->nmodels].name);
    size_t cut = n / 2;
    unsigned code = h_request("POST", url, NULL, NULL, 0, d, n, &cut, 1);
    if (code != 200 && code != 400 && code != 413 && code != 503) {
        fprintf(stderr, "fuzz_json: simulate answered %u\n", code);
        abort();
    }
    return 0;
}
