/* The client's half of the runtime: key generation, encryption and decryption. Kept apart from
 * runtime.c so that the server links no secret-key code. */
#include <string.h>

#include "core/ct.h"
#include "runtime_impl.h"

veil_status veil_circuit_keygen(const veil_circuit *c, veil_rng *rng, veil_secret_key **sk, veil_eval_keys **ek)
{
    if (!c || !sk || !ek) return VEIL_ERR_INVALID_ARG;
    *sk = NULL;
    *ek = NULL;
    veil_rng *own = NULL;
    veil_status st = VEIL_OK;
    if (!rng) {
        if ((st = veil_rng_new_os(&own)) != VEIL_OK) return st;
        rng = own;
    }
    st = veil_secret_key_new(&c->params, rng, sk);
    /* one set: its keys; several: each keyed by its prefix of the shared key, in order */
    if (st == VEIL_OK && c->prog->n_tlu && c->nparts <= 1) st = veil_eval_keys_new(*sk, rng, ek);
    for (size_t j = 0; st == VEIL_OK && c->prog->n_tlu && c->nparts > 1 && j < c->nparts; j++) {
        veil_secret_key *view = NULL;
        veil_eval_keys *part = NULL;
        st = veil_secret_key_prefix(*sk, &c->parts[j], &view);
        if (st == VEIL_OK) st = veil_eval_keys_new(view, rng, &part);
        veil_secret_key_free(view);
        if (st == VEIL_OK && j == 0) *ek = part;
        else if (st == VEIL_OK) st = veil_eval_keys_append(*ek, part);
    }
    if (st != VEIL_OK) {
        veil_eval_keys_free(*ek);
        *ek = NULL;
    }
    if (st != VEIL_OK) {
        veil_secret_key_free(*sk);
        *sk = NULL;
    }
    veil_rng_free(own);
    return st;
}

veil_status veil_circuit_encrypt(const veil_circuit *c, const veil_secret_key *sk, const int64_t *const *inputs,
                                 veil_rng *rng, veil_ciphertexts **out)
{
    if (!c || !sk || !out || (!inputs && c->prog->ninputs)) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    const veil_program *p = c->prog;
    if (!veil_rt_same_params(veil_secret_key_params(sk), &c->params)) return VEIL_ERR_PARAMS_MISMATCH;
    veil_rng *own = NULL;
    veil_status st = VEIL_OK;
    if (!rng) {
        if ((st = veil_rng_new_os(&own)) != VEIL_OK) return st;
        rng = own;
    }
    veil_ciphertexts *v = veil_rt_cts_new(&c->params, veil_rt_enc_input_count(p));
    if (!v) st = VEIL_ERR_NOMEM;
    for (size_t i = 0; i < p->ninputs && st == VEIL_OK; i++)
        if (!p->inputs[i].encrypted) v->nclear += (size_t)p->inputs[i].size;
    if (st == VEIL_OK && v->nclear && !(v->clear = veil_calloc(v->nclear, sizeof(int64_t)))) st = VEIL_ERR_NOMEM;
    size_t k = 0, kc = 0;
    for (size_t i = 0; i < p->ninputs && st == VEIL_OK; i++) {
        const veil_prog_input *in = &p->inputs[i];
        if (!in->encrypted) {
            if (inputs[i]) memcpy(v->clear + kc, inputs[i], sizeof(int64_t) * (size_t)in->size);
            else if (c->graph) st = VEIL_ERR_INVALID_ARG; /* the server needs it */
            kc += (size_t)in->size;
            continue;
        }
        if (!inputs[i]) {
            st = VEIL_ERR_INVALID_ARG;
            break;
        }
        for (int64_t e = 0; e < in->size && st == VEIL_OK; e++, k++)
            st = veil_lwe_encrypt(sk, VEIL_KEY_BIG, (uint64_t)inputs[i][e] << veil_rt_delta_shift(p), rng,
                                  v->data + k * v->lwe_size);
    }
    veil_rng_free(own);
    if (st != VEIL_OK) {
        veil_ciphertexts_free(v);
        return st;
    }
    *out = v;
    return VEIL_OK;
}

veil_status veil_circuit_decrypt(const veil_circuit *c, const veil_secret_key *sk, const veil_ciphertexts *v,
                                 int64_t *const *outputs)
{
    if (!c || !sk || !v || !outputs) return VEIL_ERR_INVALID_ARG;
    const veil_program *p = c->prog;
    if (!veil_rt_same_params(veil_secret_key_params(sk), &c->params) || v->fingerprint != veil_params_fingerprint(&c->params))
        return VEIL_ERR_PARAMS_MISMATCH;
    if (v->count != veil_rt_output_count(p)) return VEIL_ERR_MALFORMED;
    size_t k = 0;
    for (size_t j = 0; j < p->noutputs; j++)
        for (int64_t e = 0; e < p->outputs[j].size; e++, k++) {
            uint64_t ph = veil_lwe_phase(sk, VEIL_KEY_BIG, v->data + k * v->lwe_size);
            uint64_t m = veil_rt_decode_m(p, ph); /* the noise is rounded away: what is left is the client's result */
            VEIL_CT_PUBLIC(&m, sizeof m);
            outputs[j][e] = veil_program_decode(p, &p->outputs[j], m);
        }
    return VEIL_OK;
}

veil_status veil_circuit_encrypt_run_decrypt(const veil_circuit *c, const veil_secret_key *sk,
                                             const veil_eval_keys *ek, const int64_t *const *inputs,
                                             int64_t *const *outputs)
{
    veil_ciphertexts *in = NULL, *out = NULL;
    veil_status st = veil_circuit_encrypt(c, sk, inputs, NULL, &in);
    if (st == VEIL_OK) st = veil_circuit_run(c, ek, in, 0, &out);
    if (st == VEIL_OK) st = veil_circuit_decrypt(c, sk, out, outputs);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(out);
    return st;
}

veil_status veil_circuit_encrypt_serialize_mixed(const veil_circuit *c, const veil_secret_key *sk,
                                                 const int64_t *const *inputs, uint32_t clear_mask, veil_rng *rng,
                                                 uint8_t **out, size_t *len)
{
    if (!c || !sk || !out || !len || (!inputs && c->prog->ninputs)) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    const veil_program *p = c->prog;
    if (!veil_rt_same_params(veil_secret_key_params(sk), &c->params)) return VEIL_ERR_PARAMS_MISMATCH;
    if (p->ninputs < 32 && (clear_mask >> p->ninputs)) return VEIL_ERR_INVALID_ARG;
    size_t n = 0, nc = 0, k = 0, kc = 0;
    for (size_t i = 0; i < p->ninputs; i++)
        if (!p->inputs[i].encrypted) return VEIL_ERR_UNSUPPORTED;
        else if (!inputs[i]) return VEIL_ERR_INVALID_ARG;
        else if (i < 32 && (clear_mask >> i & 1)) nc += (size_t)p->inputs[i].size;
        else n += (size_t)p->inputs[i].size;
    uint64_t *pts = veil_malloc(sizeof(uint64_t) * (n ? n : 1)), *bodies = veil_malloc(sizeof(uint64_t) * (n ? n : 1));
    int64_t *clear = veil_malloc(sizeof(int64_t) * (nc ? nc : 1));
    veil_rng *own = NULL;
    veil_status st = pts && bodies && clear ? VEIL_OK : VEIL_ERR_NOMEM;
    if (st == VEIL_OK && !rng && (st = veil_rng_new_os(&own)) == VEIL_OK) rng = own;
    for (size_t i = 0; i < p->ninputs && st == VEIL_OK; i++)
        for (int64_t e = 0; e < p->inputs[i].size; e++)
            if (i < 32 && (clear_mask >> i & 1)) clear[kc++] = inputs[i][e];
            else pts[k++] = (uint64_t)inputs[i][e] << veil_rt_delta_shift(p);
    uint8_t seed[VEIL_SEED_BYTES];
    if (st == VEIL_OK) {
        veil_rng_seed(rng, seed); /* public: the masks are public */
        st = veil_lwe_encrypt_seeded(sk, VEIL_KEY_BIG, pts, n, seed, rng, bodies);
    }
    if (st == VEIL_OK)
        st = veil_lwe_list_write(&c->params, veil_params_big_lwe_dim(&c->params), seed, bodies, n, clear, nc,
                                 c->bound ? c->model_id : NULL, out, len);
    veil_memzero(pts, sizeof(uint64_t) * n); /* the plaintexts */
    veil_free(pts);
    veil_free(bodies);
    veil_free(clear);
    veil_rng_free(own);
    return st;
}

veil_status veil_circuit_encrypt_serialize(const veil_circuit *c, const veil_secret_key *sk,
                                           const int64_t *const *inputs, veil_rng *rng, uint8_t **out, size_t *len)
{
    return veil_circuit_encrypt_serialize_mixed(c, sk, inputs, 0, rng, out, len);
}
