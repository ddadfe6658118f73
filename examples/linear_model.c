/* The toy model of Concrete's documentation as a veil program: y = w @ x + b with w = [2], b = 2,
 * an encrypted x of shape (1,), compiled on the inputset 0..3, then run encrypted on x = 3. */
#include <stdio.h>

#include "veil/runtime.h"

int main(void)
{
    int rc = 1;
    veil_graph *g = NULL;
    veil_circuit *c = NULL;
    veil_secret_key *sk = NULL;
    veil_eval_keys *ek = NULL;
    if (veil_graph_new(&g) != VEIL_OK) return 1;

    int b = veil_graph_scalar(g, 2);
    int w = veil_graph_constant(g, 1, (int64_t[]){1}, (int64_t[]){2});
    int x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 1, (int64_t[]){1});
    int y = veil_graph_add(g, veil_graph_matmul(g, w, x), b);
    if (veil_graph_output(g, y) != VEIL_OK) {
        fprintf(stderr, "linear_model: %s\n", veil_graph_last_error(g));
        goto out;
    }

    int64_t samples[4] = {0, 1, 2, 3};
    const int64_t *inputset[4] = {&samples[0], &samples[1], &samples[2], &samples[3]};
    veil_compile_config cfg;
    veil_compile_config_default(&cfg);
    if (veil_compile(g, inputset, 4, &cfg, &c) != VEIL_OK) {
        fprintf(stderr, "linear_model: %s\n", veil_compiler_last_error());
        goto out;
    }
    printf("%s", veil_circuit_format(c));
    printf("Max bit_width = %u\n", veil_circuit_max_bit_width(c));

    veil_status st = veil_circuit_keygen(c, NULL, &sk, &ek);
    int64_t in3 = 3, result = -1;
    const int64_t *in[1] = {&in3};
    int64_t *out[1] = {&result};
    if (st == VEIL_OK) st = veil_circuit_encrypt_run_decrypt(c, sk, ek, in, out);
    if (st != VEIL_OK) {
        fprintf(stderr, "linear_model: %s\n", veil_status_str(st));
        goto out;
    }
    printf("circuit.encrypt_run_decrypt(3) = %lld\n", (long long)result);
    rc = result == 8 ? 0 : 1;
out:
    veil_eval_keys_free(ek);
    veil_secret_key_free(sk);
    veil_circuit_free(c);
    veil_graph_free(g);
    return rc;
}
