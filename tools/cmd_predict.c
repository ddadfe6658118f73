/* veil predict DIR --input X.npy [--labels Y.npy] --mode clear|simulate|execute [--limit N]
 * [-o P.npy]: run a compiled model on every sample of X. */
#include <stdio.h>
#include <string.h>

#include "bench_util.h"
#include "cli.h"
#include "cli_io.h"
#include "commands.h"
#include "veil/model.h"
#include "veil/npy.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: veil predict DIR --input X.npy --mode clear|simulate|execute [--labels Y.npy]\n"
               "                    [--limit N] [-o P.npy] [--progress]\n"
               "  runs the model compiled into DIR on each sample of X (shape (N, ...)); execute generates\n"
               "  keys, encrypts, runs on ciphertexts and decrypts. Prints the per-sample latency and, with\n"
               "  labels, accuracy=... (of the first output); -o writes the outputs (float64, shape (N, ...)).\n"
               "  A model of several inputs takes one --input per input, in its order, and of several\n"
               "  outputs one -o per output. A progress bar is drawn on stderr when it is a terminal (or\n"
               "  with --progress).\n");
}

int veil_cmd_predict(int argc, char **argv)
{
    const char *dir = NULL, *input[VEIL_MODEL_MAX_IO], *labels = NULL, *out[VEIL_MODEL_MAX_IO], *mode_s = NULL;
    int nin = 0, nout = 0;
    long limit = -1;
    int progress = cli_tty_progress();
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--progress"))
            progress = 1;
        else if (a[0] == '-' && a[1]) {
            if (!(val = cli_value("predict", argc, argv, &i))) return 2;
            if (!strcmp(a, "--input") || !strcmp(a, "-o") || !strcmp(a, "--output")) {
                int is_in = !strcmp(a, "--input");
                if ((is_in ? nin : nout) == VEIL_MODEL_MAX_IO) {
                    fprintf(stderr, "veil predict: at most %d %s\n", VEIL_MODEL_MAX_IO, is_in ? "inputs" : "outputs");
                    return 2;
                }
                if (is_in) input[nin++] = val;
                else out[nout++] = val;
            } else if (!strcmp(a, "--labels")) labels = val;
            else if (!strcmp(a, "--mode")) mode_s = val;
            else if (!strcmp(a, "--limit")) {
                if (!cli_int("predict", a, val, 1, 1L << 40, &limit)) return 2;
            } else {
                fprintf(stderr, "veil predict: unknown option '%s' (veil predict --help)\n", a);
                return 2;
            }
        } else if (!dir)
            dir = a;
        else {
            fprintf(stderr, "veil predict: one model directory at a time (extra argument '%s')\n", a);
            return 2;
        }
    }
    if (!dir || !nin || !mode_s) {
        fprintf(stderr, "veil predict: needs DIR, --input X.npy and --mode\n");
        usage(stderr);
        return 2;
    }
    veil_mode mode = VEIL_MODE_COUNT;
    for (int k = 0; k < VEIL_MODE_COUNT; k++)
        if (!strcmp(mode_s, veil_mode_names[k])) mode = (veil_mode)k;
    if (mode == VEIL_MODE_COUNT) {
        fprintf(stderr, "veil predict: --mode is clear, simulate or execute (got '%s')\n", mode_s);
        return 2;
    }
    int rc = 1;
    veil_model *m = NULL;
    veil_array x = {0}, y = {0}, p = {0};
    double *lat = NULL;
    if (veil_model_load(dir, &m) != VEIL_OK) {
        fprintf(stderr, "veil predict: %s\n", veil_model_last_error());
        goto done;
    }
    if (cli_load_inputs("predict", input, nin, m, NULL, &x) != VEIL_OK) goto done;
    if (labels && veil_npy_load(labels, &y) != VEIL_OK) {
        fprintf(stderr, "veil predict: %s\n", veil_npy_last_error());
        goto done;
    }
    if (nout && !cli_check_outputs("predict", (const char *const *)out, nout, m)) goto done; /* before the work */
    int64_t isz = veil_model_input_size(m), osz = veil_model_output_size(m), osz0 = veil_model_output_size_at(m, 0);
    int64_t n = x.shape[0];
    if (limit > 0 && limit < n) n = limit;
    if (labels && (y.ndim != 1 || y.shape[0] < n)) {
        fprintf(stderr, "veil predict: %s: expected one label per sample (shape (%lld,))\n", labels,
                (long long)x.shape[0]);
        goto done;
    }
    int64_t pshape[2] = {n, osz};
    if (veil_array_new(&p, 2, pshape) != VEIL_OK || !(lat = malloc(sizeof(double) * (size_t)n))) {
        fprintf(stderr, "veil predict: out of memory\n");
        goto done;
    }
    if (mode == VEIL_MODE_EXECUTE) {
        double t0 = bench_now_s();
        if (veil_model_keygen(m, NULL) != VEIL_OK) {
            fprintf(stderr, "veil predict: %s\n", veil_model_last_error());
            goto done;
        }
        printf("keygen: %.3f s\n", bench_now_s() - t0);
    }
    int64_t correct = 0;
    double start = bench_now_s();
    for (int64_t i = 0; i < n; i++) {
        double t0 = bench_now_s();
        if (veil_model_forward(m, mode, x.data + i * isz, p.data + i * osz) != VEIL_OK) {
            fprintf(stderr, "%sveil predict: sample %lld: %s\n", progress ? "\n" : "", (long long)i,
                    veil_model_last_error());
            goto done;
        }
        lat[i] = bench_now_s() - t0;
        if (labels) {
            int64_t pred = cli_predicted_class(p.data + i * osz, osz0);
            correct += pred == (int64_t)y.data[i];
        }
        cli_progress(progress, (size_t)i + 1, (size_t)n, bench_now_s() - start);
    }
    double total = bench_now_s() - start;
    printf("mode=%s samples=%lld latency_median_s=%.6f latency_mean_s=%.6f total_s=%.3f\n", veil_mode_names[mode],
           (long long)n, bench_median(lat, (int)n), total / (double)n, total);
    if (labels) printf("accuracy=%.4f (%lld/%lld)\n", (double)correct / (double)n, (long long)correct, (long long)n);
    if (nout && cli_save_outputs("predict", (const char *const *)out, nout, m, p.data, n) != VEIL_OK) goto done;
    rc = 0;
done:
    free(lat);
    veil_array_free(&x), veil_array_free(&y), veil_array_free(&p);
    veil_model_free(m);
    return rc;
}
