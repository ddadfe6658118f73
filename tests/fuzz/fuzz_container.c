/* libFuzzer target: every reader of the container format (docs/format.md). The first byte picks
 * the object kind the rest is read as: secret key, evaluation keys (expanded or seeded: the flag
 * decides), ciphertext list (with its clear values and model id), circuit, client bundle, server
 * bundle, a model from both bundles, a parameter set. Nothing may crash, leak or read out of
 * bounds; whatever loads is used a little (stats, sizes) and freed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tfhe/serialize.h"
#include "veil/client.h"
#include "veil/model.h"
#include "veil/runtime.h"
#include "veil/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const unsigned which = data[0] % 9;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (which) {
    case 0: {
        veil_secret_key *sk = NULL;
        if (veil_secret_key_deserialize(d, n, NULL, &sk) == VEIL_OK) (void)veil_secret_key_params(sk);
        veil_secret_key_free(sk);
        break;
    }
    case 1: {
        veil_eval_keys *ek = NULL;
        if (veil_eval_keys_deserialize(d, n, NULL, &ek) == VEIL_OK) veil_eval_keys_compact(ek);
        veil_eval_keys_free(ek);
        break;
    }
    case 2: {
        uint32_t dim = 0;
        uint64_t *cts = NULL;
        size_t count = 0;
        if (veil_lwe_list_deserialize(d, n, NULL, &dim, &cts, &count) == VEIL_OK && count) cts[0] ^= cts[count - 1];
        veil_free(cts);
        int64_t *clear = NULL;
        size_t nc = 0;
        if (veil_lwe_list_clear_values(d, n, &clear, &nc) == VEIL_OK) veil_free(clear);
        uint8_t id[VEIL_MODEL_ID_BYTES];
        (void)veil_lwe_list_model_id(d, n, id);
        break;
    }
    case 3: {
        veil_circuit *c = NULL;
        if (veil_circuit_deserialize(d, n, &c) == VEIL_OK) {
            veil_circuit_stats s;
            veil_circuit_get_stats(c, &s);
            (void)veil_circuit_max_bit_width(c);
        }
        veil_circuit_free(c);
        break;
    }
    case 4: {
        veil_client *c = NULL;
        if (veil_client_from_bytes(d, n, &c) == VEIL_OK) (void)veil_client_needs_eval_keys(c);
        veil_client_free(c);
        break;
    }
    case 5: {
        veil_server_model *m = NULL;
        if (veil_server_model_from_bytes(d, n, &m) == VEIL_OK) (void)veil_server_model_circuit(m);
        veil_server_model_free(m);
        break;
    }
    case 6:
    case 7: { /* a client bundle alone (6), or split in two at a point the next bytes give (7) */
        veil_model *m = NULL;
        if (which == 6) {
            if (veil_model_deserialize(d, n, NULL, 0, &m) == VEIL_OK) (void)veil_model_input_size(m);
        } else if (n >= 4) {
            size_t cut = 4 + ((size_t)d[0] | (size_t)d[1] << 8 | (size_t)d[2] << 16 | (size_t)d[3] << 24) % (n - 3);
            if (veil_model_deserialize(d + 4, cut - 4, d + cut, n - cut, &m) == VEIL_OK) (void)veil_model_output_size(m);
        }
        veil_model_free(m);
        break;
    }
    default: {
        veil_params p;
        (void)veil_params_get(d, n, &p);
        break;
    }
    }
    return 0;
}
