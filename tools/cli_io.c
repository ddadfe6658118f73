/* Samples in and out of .npy files for models of several inputs and outputs (cli_io.h). */
#include <math.h>
#include "cli_io.h"

#include <stdio.h>
#include <string.h>

static int is_npz(const char *p)
{
    size_t n = strlen(p);
    return n >= 4 && !strcmp(p + n - 4, ".npz");
}

/* The arrays of one .npz, in the model's input order: by input name, or arr_0, arr_1, ... as
 * numpy.savez names positional arrays. */
static veil_status npz_inputs(const char *cmd, const char *path, size_t nin, char (*names)[VEIL_MODEL_NAME_BYTES],
                              veil_array *a)
{
    veil_npz z;
    if (veil_npz_load(path, &z) != VEIL_OK) {
        fprintf(stderr, "veil %s: %s\n", cmd, veil_npy_last_error());
        return VEIL_ERR_MALFORMED;
    }
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < nin && st == VEIL_OK; i++) {
        char pos[32];
        snprintf(pos, sizeof pos, "arr_%zu", i);
        const veil_array *v = veil_npz_get(&z, names[i]);
        if (!v) v = veil_npz_get(&z, pos);
        if (!v) {
            fprintf(stderr, "veil %s: %s has no array '%s' (model input %zu; it holds", cmd, path, names[i], i);
            for (size_t k = 0; k < z.count; k++) fprintf(stderr, "%s '%s'", k ? "," : "", z.names[k]);
            fprintf(stderr, "%s): name each array after its input\n", z.count ? "" : " none");
            st = VEIL_ERR_INVALID_ARG;
            break;
        }
        int64_t sh[VEIL_MAX_DIMS];
        memcpy(sh, v->shape, sizeof sh);
        if ((st = veil_array_new(&a[i], v->ndim, sh)) != VEIL_OK) {
            fprintf(stderr, "veil %s: out of memory\n", cmd);
            break;
        }
        memcpy(a[i].data, v->data, sizeof(double) * (size_t)v->size);
    }
    if (st == VEIL_OK && z.count > nin)
        fprintf(stderr, "veil %s: note: %s holds %zu arrays, the model reads %zu\n", cmd, path, z.count, nin);
    veil_npz_free(&z);
    return st;
}

veil_status cli_load_inputs(const char *cmd, const char *const *paths, int n, const veil_model *m, const char *onnx,
                            veil_array *out)
{
    memset(out, 0, sizeof *out);
    if (n < 1 || n > VEIL_MODEL_MAX_IO) {
        fprintf(stderr, "veil %s: between 1 and %d input files\n", cmd, VEIL_MODEL_MAX_IO);
        return VEIL_ERR_INVALID_ARG;
    }
    /* the model's inputs: from the compiled model, or read from the ONNX file */
    static char names[VEIL_MODEL_MAX_IO][VEIL_MODEL_NAME_BYTES];
    size_t nin = 0;
    if (m) {
        nin = veil_model_input_count(m);
        for (size_t i = 0; i < nin && i < VEIL_MODEL_MAX_IO; i++)
            snprintf(names[i], sizeof names[i], "%s", veil_model_input_name(m, i));
    } else if (onnx && veil_model_onnx_input_names(onnx, names, VEIL_MODEL_MAX_IO, &nin) != VEIL_OK) {
        fprintf(stderr, "veil %s: %s\n", cmd, veil_model_last_error());
        return VEIL_ERR_INVALID_ARG;
    }
    int npz = 0;
    for (int i = 0; i < n; i++) npz += is_npz(paths[i]);
    if (npz && n > 1) {
        fprintf(stderr, "veil %s: one .npz holds every input (given %d files)\n", cmd, n);
        return VEIL_ERR_INVALID_ARG;
    }
    if (npz && nin == 0) {
        fprintf(stderr, "veil %s: %s: the model's input names are unknown\n", cmd, paths[0]);
        return VEIL_ERR_INVALID_ARG;
    }
    if (!npz && nin && (size_t)n != nin) {
        fprintf(stderr, "veil %s: the model has %zu inputs (", cmd, nin);
        for (size_t i = 0; i < nin; i++) fprintf(stderr, "%s'%s'", i ? ", " : "", names[i]);
        fprintf(stderr, "), given %d input file%s: one per input, in that order, or one .npz\n", n, n == 1 ? "" : "s");
        return VEIL_ERR_INVALID_ARG;
    }
    veil_array a[VEIL_MODEL_MAX_IO];
    memset(a, 0, sizeof a);
    veil_status st = VEIL_OK;
    const char *src[VEIL_MODEL_MAX_IO];
    char member[VEIL_MODEL_MAX_IO][VEIL_MODEL_NAME_BYTES + 600];
    if (npz) {
        st = npz_inputs(cmd, paths[0], nin, names, a);
        for (size_t i = 0; i < nin; i++) {
            snprintf(member[i], sizeof member[i], "%.500s['%.64s']", paths[0], names[i]);
            src[i] = member[i];
        }
        n = (int)nin;
    } else {
        for (int i = 0; i < n; i++) src[i] = paths[i];
    }
    int64_t N = 0, row[VEIL_MODEL_MAX_IO], total = 0;
    for (int i = 0; i < n && st == VEIL_OK; i++) {
        if (!npz && (st = veil_npy_load(paths[i], &a[i])) != VEIL_OK) {
            fprintf(stderr, "veil %s: %s\n", cmd, veil_npy_last_error());
            break;
        }
        if (a[i].ndim < 1 || a[i].shape[0] < 1) {
            fprintf(stderr, "veil %s: %s: needs a sample axis first (shape (N, ...))\n", cmd, src[i]);
            st = VEIL_ERR_INVALID_ARG;
            break;
        }
        if (i == 0) N = a[0].shape[0];
        if (a[i].shape[0] != N) {
            fprintf(stderr, "veil %s: %s holds %lld samples, %s holds %lld: every input needs as many\n", cmd, src[i],
                    (long long)a[i].shape[0], src[0], (long long)N);
            st = VEIL_ERR_INVALID_ARG;
            break;
        }
        row[i] = a[i].size / N;
        if (m && row[i] != veil_model_input_size_at(m, (size_t)i)) {
            fprintf(stderr, "veil %s: %s: expected shape (N, ...) with %lld values per sample (input '%s')\n", cmd,
                    src[i], (long long)veil_model_input_size_at(m, (size_t)i), veil_model_input_name(m, (size_t)i));
            st = VEIL_ERR_INVALID_ARG;
            break;
        }
        total += row[i];
    }
    if (st == VEIL_OK && n == 1) { /* as it is */
        *out = a[0];
        return VEIL_OK;
    }
    int64_t shape[2] = {N, total};
    if (st == VEIL_OK && (st = veil_array_new(out, 2, shape)) != VEIL_OK) fprintf(stderr, "veil %s: out of memory\n", cmd);
    for (int64_t s = 0; st == VEIL_OK && s < N; s++) {
        double *d = out->data + s * total;
        for (int i = 0; i < n; i++) {
            memcpy(d, a[i].data + s * row[i], sizeof(double) * (size_t)row[i]);
            d += row[i];
        }
    }
    for (int i = 0; i < n; i++) veil_array_free(&a[i]);
    return st;
}

int cli_check_outputs(const char *cmd, const char *const *paths, int n, const veil_model *m)
{
    size_t no = veil_model_output_count(m);
    if ((size_t)n == no || (n == 1 && is_npz(paths[0]))) return 1;
    fprintf(stderr, "veil %s: the model has %zu outputs (", cmd, no);
    for (size_t j = 0; j < no; j++) fprintf(stderr, "%s'%s'", j ? ", " : "", veil_model_output_name(m, j));
    fprintf(stderr, "), given %d output file%s: one -o per output, in that order, or one .npz\n", n, n == 1 ? "" : "s");
    return 0;
}

veil_status cli_save_outputs(const char *cmd, const char *const *paths, int n, const veil_model *m, const double *y,
                             int64_t N)
{
    size_t no = veil_model_output_count(m);
    if (!cli_check_outputs(cmd, paths, n, m)) return VEIL_ERR_INVALID_ARG;
    int npz = n == 1 && is_npz(paths[0]);
    int64_t osz = veil_model_output_size(m), off = 0;
    veil_status st = VEIL_OK;
    /* every file is encoded before any is written */
    uint8_t *bytes[VEIL_MODEL_MAX_IO] = {0};
    size_t len[VEIL_MODEL_MAX_IO] = {0};
    veil_array arr[VEIL_MODEL_MAX_IO];
    const veil_array *ap[VEIL_MODEL_MAX_IO];
    const char *nm[VEIL_MODEL_MAX_IO];
    memset(arr, 0, sizeof arr);
    for (size_t j = 0; j < no && st == VEIL_OK; j++) {
        veil_array *p = &arr[j];
        int64_t shape[VEIL_MAX_DIMS], k = veil_model_output_size_at(m, j);
        int nd = veil_model_output_shape_at(m, j, shape);
        if (nd < 1) nd = 1, shape[0] = 1;
        shape[0] = N; /* the batch axis of size 1 becomes the sample axis */
        if ((st = veil_array_new(p, nd, shape)) != VEIL_OK) {
            fprintf(stderr, "veil %s: out of memory\n", cmd);
            break;
        }
        for (int64_t s = 0; s < N; s++) memcpy(p->data + s * k, y + s * osz + off, sizeof(double) * (size_t)k);
        off += k;
        ap[j] = p;
        nm[j] = veil_model_output_name(m, j);
        if (!npz && (st = veil_npy_encode(p, VEIL_NPY_F64, &bytes[j], &len[j])) != VEIL_OK)
            fprintf(stderr, "veil %s: %s\n", cmd, veil_npy_last_error());
    }
    if (st == VEIL_OK && npz) {
        for (size_t j = 0; j < no && st == VEIL_OK; j++)
            for (size_t k = 0; k < j; k++)
                if (!strcmp(nm[j], nm[k]) || !nm[j][0]) {
                    fprintf(stderr, "veil %s: %s: outputs %zu and %zu share the name '%s' (write one .npy each)\n",
                            cmd, paths[0], k, j, nm[j]);
                    st = VEIL_ERR_INVALID_ARG;
                    break;
                }
        if (st == VEIL_OK && (st = veil_npz_save(paths[0], no, nm, ap, VEIL_NPY_F64)) != VEIL_OK)
            fprintf(stderr, "veil %s: %s\n", cmd, veil_npy_last_error());
    }
    for (size_t j = 0; j < no && st == VEIL_OK && !npz; j++)
        if ((st = veil_file_write_atomic(paths[j], bytes[j], len[j], 0644)) != VEIL_OK)
            fprintf(stderr, "veil %s: %s: cannot write (%s)\n", cmd, paths[j], veil_status_str(st));
    for (size_t j = 0; j < no; j++) veil_free(bytes[j]), veil_array_free(&arr[j]);
    return st;
}

int64_t cli_predicted_class(const double *y, int64_t n)
{
    if (n == 1) return y[0] == nearbyint(y[0]) && fabs(y[0]) < 1e15 ? (int64_t)y[0] : y[0] > 0.5;
    int64_t a = 0;
    for (int64_t k = 1; k < n; k++)
        if (y[k] > y[a]) a = k;
    return a;
}

int cli_read_passphrase(const char *cmd, const char *file, char **pass, size_t *len)
{
    uint8_t *b = NULL;
    size_t n = 0;
    veil_status st = veil_file_read_all(file, 1 << 20, &b, &n);
    if (st != VEIL_OK) {
        fprintf(stderr, "veil %s: --passphrase-file %s: cannot read (%s)\n", cmd, file, veil_status_str(st));
        return 0;
    }
    size_t keep = n;
    if (keep && b[keep - 1] == '\n') keep--;
    if (keep && b[keep - 1] == '\r') keep--;
    if (!keep) {
        veil_free_secret(b, n);
        fprintf(stderr, "veil %s: --passphrase-file %s is empty\n", cmd, file);
        return 0;
    }
    char *p = veil_malloc(keep + 1);
    if (p) memcpy(p, b, keep), p[keep] = 0;
    veil_free_secret(b, n);
    if (!p) {
        fprintf(stderr, "veil %s: out of memory\n", cmd);
        return 0;
    }
    *pass = p;
    *len = keep;
    return 1;
}

int cli_open_client(const char *cmd, const char *path, const char *keys, const char *pfile, veil_client **out)
{
    char *pass = NULL;
    size_t pl = 0;
    *out = NULL;
    if (pfile && !cli_read_passphrase(cmd, pfile, &pass, &pl)) return 0;
    veil_client *c = NULL;
    veil_status st = veil_client_load(path, &c);
    if (st == VEIL_OK && pass) st = veil_client_set_passphrase(c, pass, pl);
    veil_free_secret(pass, pl + 1);
    if (st != VEIL_OK || veil_client_load_keys(c, keys) != VEIL_OK) {
        fprintf(stderr, "veil %s: %s\n", cmd, veil_client_last_error());
        veil_client_free(c);
        return 0;
    }
    *out = c;
    return 1;
}
