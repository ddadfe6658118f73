/* Samples in and out of .npy files, one file per model input and per output, or of one .npz
 * holding every input (arrays named after the inputs, or arr_0, arr_1, ...) or every output
 * (named after the outputs). */
#ifndef VEIL_TOOLS_CLI_IO_H
#define VEIL_TOOLS_CLI_IO_H

#include "veil/client.h"
#include "veil/model.h"
#include "veil/npy.h"

/* Loads n .npy files of shape (N, ...) each (the model's inputs in its order), or one .npz, into
 * one array of N rows, each every input's row one after another. The inputs are the compiled
 * model's (m; count and row sizes checked) or, without one, the ONNX file's (onnx; names only).
 * One line on stderr on failure (cmd names the command). */
veil_status cli_load_inputs(const char *cmd, const char *const *paths, int n, const veil_model *m, const char *onnx,
                            veil_array *out);
/* 1 when n output files match the model's outputs (or n is 1 and it is a .npz); else 0 and one
 * line on stderr. */
int cli_check_outputs(const char *cmd, const char *const *paths, int n, const veil_model *m);
/* Writes N samples of the model's outputs (y: N rows of veil_model_output_size) as one .npy per
 * output (n must be the output count), each of shape (N, ...); nothing is written unless every
 * file could be encoded, and each is written atomically. */
veil_status cli_save_outputs(const char *cmd, const char *const *paths, int n, const veil_model *m, const double *y,
                             int64_t N);

/* The class one sample's first output names: a one-element output holding an integer is a label
 * (a classifier's label output), one holding another value a probability (> 0.5: class 1);
 * several elements are scores (the first highest). */
int64_t cli_predicted_class(const double *y, int64_t n);

/* The passphrase in `file` (all of it, one trailing newline dropped; not empty): 1 with *pass
 * (free with veil_free_secret(*pass, *len + 1)), or 0 and one line on stderr. */
int cli_read_passphrase(const char *cmd, const char *file, char **pass, size_t *len);
/* The client of bundle `path` with the keys of `keys` (secret.key unsealed with the passphrase in
 * `pfile` when given): 1 with *out (veil_client_free), or 0 and one line on stderr. */
int cli_open_client(const char *cmd, const char *path, const char *keys, const char *pfile, veil_client **out);

#endif
