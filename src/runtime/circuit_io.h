/* Sections of a compiled circuit inside a container (docs/format.md): PRMS, CIRC (encoding,
 * interface, statistics), and for the full program SLOT, INST and LIST. A model bundle writes
 * these sections into its own container kind. Internal to libveil. */
#ifndef VEIL_RUNTIME_CIRCUIT_IO_H
#define VEIL_RUNTIME_CIRCUIT_IO_H

#include "../core/container.h"
#include "../tfhe/serialize.h"
#include "veil/compiler.h"

/* The model id of a bundle pair (section MDID, docs/format.md): the first bytes of the SHA-256 of
 * the model's circuit serialized alone. Written by src/ml/bundle.c, checked by src/deploy/
 * (TAG_MDID and VEIL_MODEL_ID_BYTES: tfhe/serialize.h, since ciphertext lists carry it too.) */
#define TAG_CLRI VEIL_TAG('C', 'L', 'R', 'I') /* bundles: u32 mask of the model inputs sent in the clear */

/* with_program 0: the interface only (what a client needs to encrypt and decrypt);
 * 1: also the instructions, the output slots and the listing (what a server needs).
 * VEIL_ERR_UNSUPPORTED for a circuit whose clear inputs reach encrypted operations (it is
 * lowered again at each evaluation and keeps its graph). */
VEIL_NODISCARD veil_status veil_circuit_write_sections(veil_writer *w, const veil_circuit *c, int with_program);
/* Reads what write_sections wrote; every count is bounded by its section and every slot checked
 * (written once, before it is read), so a loaded program never reads outside its slots. A
 * circuit read without its program can encrypt and decrypt, and refuses to run. */
VEIL_NODISCARD veil_status veil_circuit_read_sections(const veil_container *cn, int with_program,
                                                      veil_circuit **out);

/* A bundle's TAG_CLRI section: the mask of the inputs sent in the clear (0 when absent); a mask
 * past the circuit's ninputs inputs, or of every input, is VEIL_ERR_MALFORMED. */
VEIL_NODISCARD veil_status veil_bundle_read_clear_mask(const veil_container *cn, size_t ninputs, uint32_t *mask);

/* Binds a circuit to its model id (from a bundle, or computed at compile): its ciphertext lists
 * then carry the id, and lists of another model, or of none, are refused with
 * VEIL_ERR_MODEL_MISMATCH. */
void veil_circuit_bind_model(veil_circuit *c, const uint8_t id[VEIL_MODEL_ID_BYTES]);
/* The id of the circuit's model: the first bytes of the SHA-256 of the circuit serialized alone. */
VEIL_NODISCARD veil_status veil_circuit_model_id(const veil_circuit *c, uint8_t id[VEIL_MODEL_ID_BYTES]);

#endif
