/* The parameters section every serialized object starts with (docs/format.md): the parameter set
 * field by field and its fingerprint. Internal to libveil; other layers' objects (bundles) use it
 * so that everything names the parameters it was made for. */
#ifndef VEIL_TFHE_SERIALIZE_H
#define VEIL_TFHE_SERIALIZE_H

#include "../core/container.h"
#include "veil/tfhe.h"

#define VEIL_TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define TAG_PARAMS VEIL_TAG('P', 'R', 'M', 'S')
/* The model id (docs/format.md): in bundles, the pair's shared id; in a ciphertext list, the model
 * it was made for, so that another model with equal parameters refuses it. */
#define TAG_MDID VEIL_TAG('M', 'D', 'I', 'D')
#define VEIL_MODEL_ID_BYTES 16

/* The parameters' encoding (the body of a PRMS section), and its reader: VEIL_ERR_MALFORMED when
 * the bytes are not exactly one valid set with its fingerprint. */
void veil_params_put(veil_buf *b, const veil_params *p);
VEIL_NODISCARD veil_status veil_params_get(const uint8_t *d, size_t len, veil_params *p);
/* Opens a PRMS section and writes p into it (and marks the object format version 2 when p needs
 * it: a key-switching source dimension or a shared key's list fingerprint). */
void veil_params_write_section(veil_writer *w, const veil_params *p);
/* Reads the PRMS section: VEIL_ERR_MALFORMED when absent, inconsistent or insecure-invalid;
 * VEIL_ERR_PARAMS_MISMATCH when expect is given and its fingerprint differs. */
VEIL_NODISCARD veil_status veil_params_read_section(const veil_container *c, const veil_params *expect,
                                                    veil_params *p);
/* Container checks for `kind` (only allowed_flags), then the parameters section: the common
 * preamble of every reader. */
VEIL_NODISCARD veil_status veil_open_object(const uint8_t *buf, size_t len, veil_kind kind, uint32_t flags,
                                            const veil_params *expect, veil_container *c, veil_params *p);

/* Every ciphertext-list writer in one: compressed when seed is given (data: the bodies), else data
 * holds count whole ciphertexts; clear values in a CLRV section when nclear; the model id in an
 * MDID section when model_id is given. */
VEIL_NODISCARD veil_status veil_lwe_list_write(const veil_params *p, uint32_t dim, const uint8_t *seed,
                                               const uint64_t *data, size_t count, const int64_t *clear, size_t nclear,
                                               const uint8_t *model_id, uint8_t **out, size_t *len);
/* The model id a list carries: VEIL_OK, or VEIL_ERR_MALFORMED when it carries none (or a malformed
 * one); the container's own errors as they are. */
VEIL_NODISCARD veil_status veil_lwe_list_model_id(const uint8_t *buf, size_t len, uint8_t id[VEIL_MODEL_ID_BYTES]);

#endif
