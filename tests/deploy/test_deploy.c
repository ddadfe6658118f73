/* Deployment library (veil/client.h, veil/server.h) on the bundled QAT digits model:
 *  - a client with only client.veil and a server with only server.veil agree with the model's own
 *    clear evaluation, through bytes only (compressed keys and inputs, full outputs); the model
 *    rounds exactly, so the outputs are compared value for value;
 *  - the secret key file has mode 0600 and a reloaded key decrypts the same answer;
 *  - every refusal (keys or ciphertexts of other parameters, truncated or corrupted bytes, a newer
 *    format, a secret key or a bundle where keys belong) is a status and a line saying which;
 *  - ciphertexts and answers carry their model's id: those of another model with the same
 *    parameters, or of none, are refused by name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/container.h"
#include "tfhe/serialize.h"
#include "veil/client.h"
#include "veil/npy.h"
#include "veil/server.h"

#ifndef VEIL_SOURCE_DIR
#define VEIL_SOURCE_DIR "."
#endif

static int argmax(const double *y, int64_t n)
{
    int a = 0;
    for (int64_t k = 1; k < n; k++)
        if (y[k] > y[a]) a = (int)k;
    return a;
}

/* `buf` with its model id section replaced by `id` (NULL: dropped), as another model with the same
 * parameters (or an older veil) would have written it. */
static uint8_t *with_model_id(const uint8_t *buf, size_t len, const uint8_t *id, size_t *out_len)
{
    veil_container c;
    if (veil_container_parse(buf, len, VEIL_KIND_LWE_CIPHERTEXTS, VEIL_FLAG_SEEDED, &c) != VEIL_OK) return NULL;
    veil_writer w;
    veil_writer_begin(&w, c.kind, c.flags);
    veil_writer_version(&w, c.version);
    int found = 0;
    for (uint32_t i = 0; i < c.nsections; i++) {
        int mdid = c.tags[i] == TAG_MDID;
        found += mdid;
        if (mdid && !id) continue;
        veil_writer_section(&w, c.tags[i]);
        veil_buf_put(&w.b, mdid ? id : c.sec[i], mdid ? VEIL_MODEL_ID_BYTES : (size_t)c.sec_len[i]);
    }
    uint8_t *out = NULL;
    if (veil_writer_finish(&w, &out, out_len) != VEIL_OK || found != 1) {
        veil_free(out);
        return NULL;
    }
    return out;
}

static int has(const char *msg, const char *what)
{
    int ok = strstr(msg, what) != NULL;
    if (!ok) fprintf(stderr, "message \"%s\" lacks \"%s\"\n", msg, what);
    return ok;
}

int main(void)
{
    const char *root = VEIL_SOURCE_DIR "/models/digits_qat";
    veil_array tr, te;
    CHECK_OK(veil_npy_load(VEIL_SOURCE_DIR "/models/digits_qat/train.npy", &tr));
    CHECK_OK(veil_npy_load(VEIL_SOURCE_DIR "/models/digits_qat/test.npy", &te));
    veil_model_options o;
    veil_model_options_default(&o);
    o.qat = 1;
    o.n_bits.model_inputs = o.n_bits.model_outputs = 4;
    o.rounding_bits = 6;
    o.rounding_method = VEIL_ROUNDING_EXACT; /* execute then gives clear's integers: no midpoint to tip */
    char path[600], dir[] = "/tmp/veil_test_deploy_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/model.onnx", root);
    veil_model *m = NULL;
    CHECK_OK(veil_model_compile_file(path, tr.data, (size_t)tr.shape[0], (size_t)(tr.size / tr.shape[0]), &o, &m));
    if (!m) return check_done("test_deploy");
    CHECK_OK(veil_model_save(m, dir));

    /* each side loads only its own file */
    veil_client *c = NULL;
    veil_server_model *s = NULL;
    snprintf(path, sizeof path, "%s/client.veil", dir);
    CHECK_OK(veil_client_load(path, &c));
    snprintf(path, sizeof path, "%s/server.veil", dir);
    CHECK_OK(veil_server_model_load(path, &s));
    if (!c || !s) return check_done("test_deploy");
    CHECK(strcmp(veil_client_model_id(c), veil_server_model_id(s)) == 0 && strlen(veil_client_model_id(c)) == 32,
          "model ids %s and %s", veil_client_model_id(c), veil_server_model_id(s));
    veil_client *wrong = NULL;
    CHECK(veil_client_load(path, &wrong) == VEIL_ERR_BAD_KIND && has(veil_client_last_error(), "got a server bundle"),
          "server bundle as client: %s", veil_client_last_error());

    uint8_t seed[VEIL_SEED_BYTES] = {9, 9};
    CHECK_OK(veil_client_keygen(c, seed));
    uint8_t *ekb = NULL;
    size_t ekl = 0;
    CHECK_OK(veil_client_eval_keys(c, &ekb, &ekl));
    veil_eval_keys *ek = NULL;
    CHECK_OK(veil_server_keys_precheck(s, ekb, 64));
    CHECK_OK(veil_server_keys_load(s, ekb, ekl, &ek));
    printf("evaluation keys: %zu bytes compressed\n", ekl);

    int64_t isz = veil_model_input_size(m), osz = veil_model_output_size(m);
    double *y = malloc(sizeof(double) * (size_t)osz), *yc = malloc(sizeof(double) * (size_t)osz);
    double *y2 = malloc(sizeof(double) * (size_t)osz);
    uint8_t *req = NULL, *resp = NULL;
    size_t reql = 0, respl = 0;
    int agree = 0, n = check_quick() ? 1 : 3;
    for (int i = 0; i < n; i++) {
        const double *x = te.data + (int64_t)i * isz;
        veil_free(req), veil_free(resp);
        CHECK_OK(veil_client_quantize_encrypt_serialize(c, x, &req, &reql));
        CHECK_OK(veil_server_run(s, ek, req, reql, 0, &resp, &respl));
        CHECK_OK(veil_client_deserialize_decrypt_dequantize(c, resp, respl, y));
        CHECK_OK(veil_model_forward(m, VEIL_MODE_CLEAR, x, yc));
        agree += argmax(y, osz) == argmax(yc, osz) && memcmp(y, yc, sizeof(double) * (size_t)osz) == 0;
    }
    printf("inputs %zu bytes compressed, outputs %zu bytes; %d/%d predictions equal clear\n", reql, respl, agree, n);
    CHECK(agree == n, "deployed predictions equal clear on %d/%d", agree, n);

    /* the secret key file: 0600, and it decrypts the same answer in a fresh client */
    char skp[640];
    snprintf(skp, sizeof skp, "%s/secret.key", dir);
    CHECK_OK(veil_client_save_secret_key(c, skp));
    struct stat st;
    CHECK(stat(skp, &st) == 0 && (st.st_mode & 0777) == 0600, "secret key mode %o", (unsigned)(st.st_mode & 0777));
    veil_client *c2 = NULL;
    snprintf(path, sizeof path, "%s/client.veil", dir);
    CHECK_OK(veil_client_load(path, &c2));
    CHECK(veil_client_deserialize_decrypt_dequantize(c2, resp, respl, y2) == VEIL_ERR_INVALID_ARG, "no key yet");
    CHECK_OK(veil_client_load_secret_key(c2, skp));
    CHECK_OK(veil_client_deserialize_decrypt_dequantize(c2, resp, respl, y2));
    CHECK(memcmp(y, y2, sizeof(double) * (size_t)osz) == 0, "reloaded secret key decrypts the same");

    /* sealed under a passphrase: unreadable without it or with another, the same key with it */
    char sealed[640];
    snprintf(sealed, sizeof sealed, "%s/sealed.key", dir);
    static const char pass[] = "correct horse battery staple";
    CHECK_OK(veil_client_set_passphrase(c, pass, strlen(pass)));
    CHECK_OK(veil_client_save_secret_key(c, sealed));
    CHECK_OK(veil_client_set_passphrase(c, NULL, 0));
    CHECK(stat(sealed, &st) == 0 && (st.st_mode & 0777) == 0600, "sealed key mode %o", (unsigned)(st.st_mode & 0777));
    uint8_t *plain_b = NULL, *sealed_b = NULL;
    size_t plain_l = 0, sealed_l = 0;
    CHECK_OK(veil_file_read_all(skp, 1 << 24, &plain_b, &plain_l));
    CHECK_OK(veil_file_read_all(sealed, 1 << 24, &sealed_b, &sealed_l));
    /* the key bits (the plain file's last bytes before its checksum) appear nowhere in the sealed one */
    size_t kb = 64 < plain_l - 32 ? 64 : plain_l - 32;
    int found = 0;
    for (size_t i = 0; i + kb <= sealed_l; i++) found |= memcmp(sealed_b + i, plain_b + plain_l - 32 - kb, kb) == 0;
    CHECK(!found, "the sealed file does not hold the key bits in the clear");
    veil_free_secret(plain_b, plain_l), veil_free(sealed_b);
    veil_client *c3 = NULL;
    snprintf(path, sizeof path, "%s/client.veil", dir);
    CHECK_OK(veil_client_load(path, &c3));
    CHECK(veil_client_load_secret_key(c3, sealed) == VEIL_ERR_PASSPHRASE &&
              has(veil_client_last_error(), "protected by a passphrase"),
          "sealed key without a passphrase: %s", veil_client_last_error());
    CHECK_OK(veil_client_set_passphrase(c3, "wrong", 5));
    CHECK(veil_client_load_secret_key(c3, sealed) == VEIL_ERR_PASSPHRASE && has(veil_client_last_error(), "wrong passphrase"),
          "sealed key with a wrong passphrase: %s", veil_client_last_error());
    CHECK_OK(veil_client_set_passphrase(c3, pass, strlen(pass)));
    CHECK_OK(veil_client_load_secret_key(c3, sealed));
    CHECK_OK(veil_client_deserialize_decrypt_dequantize(c3, resp, respl, y2));
    CHECK(memcmp(y, y2, sizeof(double) * (size_t)osz) == 0, "the unsealed key decrypts the same");
    CHECK_OK(veil_client_load_secret_key(c3, skp)); /* a plain key reads with a passphrase set too */
    veil_client_free(c3);
    remove(sealed);

    /* refusals by the server */
    veil_eval_keys *bad = NULL;
    CHECK(veil_server_keys_load(s, ekb, ekl / 2, &bad) == VEIL_ERR_TRUNCATED &&
              has(veil_server_last_error(), "truncated"), "truncated keys");
    uint8_t *cp = malloc(ekl);
    memcpy(cp, ekb, ekl);
    cp[8] = VEIL_FORMAT_VERSION + 1; /* a format newer than this build reads */
    CHECK(veil_server_keys_load(s, cp, ekl, &bad) == VEIL_ERR_BAD_VERSION &&
              has(veil_server_last_error(), "newer software"), "newer format");
    CHECK(veil_server_keys_precheck(s, cp, 64) == VEIL_ERR_BAD_VERSION, "precheck: newer format");
    memcpy(cp, ekb, ekl);
    cp[ekl / 2] ^= 1;
    CHECK(veil_server_keys_load(s, cp, ekl, &bad) == VEIL_ERR_CHECKSUM && has(veil_server_last_error(), "corrupted"),
          "corrupted keys");
    free(cp);
    uint8_t *skb = NULL;
    size_t skl = 0;
    CHECK_OK(veil_file_read_all(skp, 1 << 24, &skb, &skl));
    CHECK(veil_server_keys_load(s, skb, skl, &bad) == VEIL_ERR_BAD_KIND &&
              has(veil_server_last_error(), "got a secret key"), "a secret key is not accepted as keys");
    CHECK(veil_server_keys_precheck(s, skb, skl) == VEIL_ERR_BAD_KIND, "precheck: secret key");
    veil_free_secret(skb, skl);
    /* keys and ciphertexts of other parameters (T4's) */
    veil_params t4;
    CHECK_OK(veil_params_named("T4", &t4));
    veil_rng *rng = NULL;
    CHECK_OK(veil_rng_new_seeded(&rng, seed));
    veil_secret_key *osk = NULL;
    veil_eval_keys *oek = NULL;
    CHECK_OK(veil_secret_key_new(&t4, rng, &osk));
    CHECK_OK(veil_eval_keys_new(osk, rng, &oek));
    uint8_t *ob = NULL;
    size_t obl = 0;
    CHECK_OK(veil_eval_keys_serialize(oek, 1, &ob, &obl));
    CHECK(veil_server_keys_precheck(s, ob, 200) == VEIL_ERR_PARAMS_MISMATCH &&
              has(veil_server_last_error(), "other parameters"), "precheck: keys of another model");
    CHECK(veil_server_keys_load(s, ob, obl, &bad) == VEIL_ERR_PARAMS_MISMATCH &&
              has(veil_server_last_error(), "another model"), "keys of another model");
    veil_free(ob);
    uint8_t *r2 = NULL;
    size_t r2l = 0;
    CHECK(veil_server_run(s, oek, req, reql, 0, &r2, &r2l) == VEIL_ERR_PARAMS_MISMATCH, "run with foreign keys");
    uint64_t zeros[2 * 1024] = {0};
    CHECK_OK(veil_lwe_list_serialize(&t4, t4.n, zeros, 2, &ob, &obl));
    CHECK(veil_server_run(s, ek, ob, obl, 0, &r2, &r2l) == VEIL_ERR_PARAMS_MISMATCH &&
              has(veil_server_last_error(), "ciphertexts made for other parameters"), "foreign ciphertexts: %s",
          veil_server_last_error());
    veil_free(ob);
    CHECK(veil_server_run(s, ek, req, reql - 7, 0, &r2, &r2l) == VEIL_ERR_TRUNCATED, "truncated inputs");
    CHECK(veil_server_run(s, ek, resp, respl, 0, &r2, &r2l) == VEIL_ERR_MALFORMED &&
              has(veil_server_last_error(), "does not fit this model"), "outputs sent as inputs");
    CHECK(r2 == NULL, "no output on refusal");
    /* bound to the model: the same bytes under another model id (equal parameters), or none */
    uint8_t other_id[VEIL_MODEL_ID_BYTES];
    memset(other_id, 0x5a, sizeof other_id);
    size_t bl = 0;
    uint8_t *b1 = with_model_id(req, reql, other_id, &bl);
    CHECK(b1 != NULL, "the request carries one model id section");
    if (b1) {
        CHECK(veil_server_run(s, ek, b1, bl, 0, &r2, &r2l) == VEIL_ERR_MODEL_MISMATCH &&
                  has(veil_server_last_error(), "another model (model id 5a5a") &&
                  has(veil_server_last_error(), veil_server_model_id(s)),
              "ciphertexts of another model with equal parameters: %s", veil_server_last_error());
        veil_free(b1);
    }
    b1 = with_model_id(req, reql, NULL, &bl);
    if (b1) {
        CHECK(veil_server_run(s, ek, b1, bl, 0, &r2, &r2l) == VEIL_ERR_MODEL_MISMATCH &&
                  has(veil_server_last_error(), "carry no model id"),
              "ciphertexts without a model id: %s", veil_server_last_error());
        veil_free(b1);
    }
    b1 = with_model_id(resp, respl, other_id, &bl);
    CHECK(b1 != NULL, "the answer carries one model id section");
    if (b1) {
        CHECK(veil_client_deserialize_decrypt_dequantize(c, b1, bl, y2) == VEIL_ERR_MODEL_MISMATCH &&
                  has(veil_client_last_error(), "another model"),
              "an answer of another model: %s", veil_client_last_error());
        veil_free(b1);
    }
    CHECK(r2 == NULL, "no output on refusal");
    /* and by the client */
    CHECK(veil_client_deserialize_decrypt_dequantize(c, resp, respl - 1, y2) == VEIL_ERR_TRUNCATED, "truncated answer");
    CHECK(veil_client_deserialize_decrypt_dequantize(c, req, reql, y2) == VEIL_ERR_MALFORMED, "inputs as an answer");
    veil_free(req), veil_free(resp), veil_free(ekb);
    veil_eval_keys_free(oek);
    veil_secret_key_free(osk);
    veil_rng_free(rng);
    veil_eval_keys_free(ek);
    veil_client_free(c);
    veil_client_free(c2);
    veil_server_model_free(s);
    veil_model_free(m);
    free(y), free(yc), free(y2);
    veil_array_free(&tr), veil_array_free(&te);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return check_done("test_deploy");
}
