/* Shared by the two halves of the runtime: runtime.c (clear, simulate, run: no secret key, links
 * into the server) and crypt.c (keygen, encrypt, decrypt: the client's). Internal to libveil. */
#ifndef VEIL_RUNTIME_IMPL_H
#define VEIL_RUNTIME_IMPL_H

#include "compiler/circuit.h"
#include "tfhe/serialize.h"
#include "veil/runtime.h"

struct veil_ciphertexts {
    uint64_t fingerprint;
    uint32_t lwe_size; /* k·N + 1 */
    size_t count;
    uint64_t *data;  /* count · lwe_size */
    size_t nclear;   /* clear input values sent along (declaration order, concatenated) */
    int64_t *clear;
};

unsigned veil_rt_delta_shift(const veil_program *p);                        /* 63 − precision: Δ = 2^shift */
uint64_t veil_rt_decode_m(const veil_program *p, uint64_t phase);          /* the top p+1 bits, rounded */
veil_ciphertexts *veil_rt_cts_new(const veil_params *P, size_t count);      /* zeroed, with P's fingerprint */
size_t veil_rt_enc_input_count(const veil_program *p);                      /* encrypted input elements */
size_t veil_rt_output_count(const veil_program *p);                         /* output elements */
int veil_rt_same_params(const veil_params *a, const veil_params *b);

#endif
