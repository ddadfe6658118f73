/* veil client: predictions through a veil server (src/deploy/remote.c); the secret key stays in
 * --keys DIR. Prints per-sample latency on stderr, a summary line with throughput and latency
 * percentiles, and accuracy with --labels; -o writes the outputs as float64 .npy. */
#include <pthread.h>

#include "bench_util.h"
#include "cli.h"
#include "commands.h"
#include "cli_io.h"
#include "veil/client.h"
#include "veil/npy.h"
#include "cli_io.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: veil client --url URL --model NAME --input X.npy [-o Y.npy] [options]\n"
               "  Predicts through a veil server; the secret key never leaves this machine. A model of\n"
               "  several inputs takes one --input per input (its order) or one .npz; -o once per output\n"
               "  or one .npz of them all.\n"
               "  --keys DIR        where keys are made once and kept (default veil-keys/NAME): secret.key\n"
               "                    (mode 0600), eval.keys (compressed, uploaded once per server), key ids\n"
               "  --passphrase-file F  secret.key sealed under the passphrase in F (made so, or read so)\n"
               "  --limit N         only the first N samples\n"
               "  --concurrency C   requests in flight at once (1..64, default 1); a 503 (busy) is waited out\n"
               "  --labels Y.npy    print accuracy=… (argmax against these labels)\n"
               "  --cacert PEM      trust this certificate (HTTPS);  --insecure  trust any\n"
               "  --progress        upload progress even when stderr is not a terminal\n");
}

typedef struct {
    int progress;
    double t0;
} ui;

static void on_upload(void *ctx, uint64_t sent, uint64_t total)
{
    ui *u = ctx;
    if (!u->t0) u->t0 = bench_now_s();
    cli_progress(u->progress, (size_t)(sent >> 20), (size_t)(total >> 20), bench_now_s() - u->t0);
}

static void on_sample(void *ctx, int64_t i, double s)
{
    (void)ctx;
    fprintf(stderr, "sample %lld: %.3f s\n", (long long)i, s);
}

static void on_note(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "veil client: %s\n", line);
}

int veil_cmd_client(int argc, char **argv)
{
    const char *input[VEIL_MODEL_MAX_IO], *output[VEIL_MODEL_MAX_IO], *labels = NULL, *pfile = NULL;
    int nin = 0, nout = 0;
    long limit = 0, conc = 1;
    ui u = {cli_tty_progress(), 0};
    veil_remote_options o = {.on_upload = on_upload, .on_sample = on_sample, .on_note = on_note, .ctx = &u};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        int takes = !strcmp(a, "--url") || !strcmp(a, "--model") || !strcmp(a, "--keys") || !strcmp(a, "--input") ||
                    !strcmp(a, "-o") || !strcmp(a, "--labels") || !strcmp(a, "--cacert") || !strcmp(a, "--limit") ||
                    !strcmp(a, "--concurrency") || !strcmp(a, "--passphrase-file");
        if (takes && !(v = cli_value("client", argc, argv, &i))) return 2;
        if (!strcmp(a, "--url")) o.url = v;
        else if (!strcmp(a, "--model")) o.model = v;
        else if (!strcmp(a, "--keys")) o.keys_dir = v;
        else if (!strcmp(a, "--passphrase-file")) pfile = v;
        else if (!strcmp(a, "--input") || !strcmp(a, "-o")) {
            if ((a[1] == 'o' ? nout : nin) == VEIL_MODEL_MAX_IO) {
                fprintf(stderr, "veil client: at most %d %s files\n", VEIL_MODEL_MAX_IO, a);
                return 2;
            }
            if (a[1] == 'o') output[nout++] = v;
            else input[nin++] = v;
        }
        else if (!strcmp(a, "--labels")) labels = v;
        else if (!strcmp(a, "--cacert")) o.cacert = v;
        else if (!strcmp(a, "--limit")) {
            if (!cli_int("client", a, v, 1, 1L << 40, &limit)) return 2;
        } else if (!strcmp(a, "--concurrency")) {
            if (!cli_int("client", a, v, 1, 64, &conc)) return 2;
        } else if (!strcmp(a, "--insecure")) o.insecure = 1;
        else if (!strcmp(a, "--progress")) u.progress = 1;
        else {
            fprintf(stderr, "veil client: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!o.url || !o.model || !nin) {
        usage(stderr);
        return 2;
    }
    char kdir[1100];
    if (!o.keys_dir) {
        snprintf(kdir, sizeof kdir, "veil-keys/%s", o.model);
        o.keys_dir = kdir;
    }
    veil_array x = {0}, lab = {0}, y = {0};
    veil_remote *r = NULL;
    double *lat = NULL;
    int rc = 1;
    char *pass = NULL;
    size_t pl = 0;
    if (pfile && !cli_read_passphrase("client", pfile, &pass, &pl)) return 1;
    o.passphrase = pass;
    o.passphrase_len = pl;
    if (labels && veil_npy_load(labels, &lab) != VEIL_OK) {
        fprintf(stderr, "veil client: %s\n", veil_npy_last_error());
        goto done;
    }
    veil_status ost = veil_remote_open(&o, &r);
    veil_free_secret(pass, pl + 1); /* the client holds its own copy */
    pass = NULL;
    if (ost != VEIL_OK) {
        if (u.t0) fputc('\n', stderr);
        fprintf(stderr, "veil client: %s\n", veil_client_last_error());
        goto done;
    }
    if (u.t0 && u.progress) fputc('\n', stderr);
    const veil_model *m = veil_client_model(veil_remote_client(r));
    int64_t osz = veil_model_output_size(m);
    if (cli_load_inputs("client", input, nin, m, NULL, &x) != VEIL_OK) goto done;
    if (nout && !cli_check_outputs("client", output, nout, m)) goto done;
    int64_t n = x.shape[0];
    if (limit && n > limit) n = limit;
    y.size = n * osz;
    y.ndim = veil_model_output_shape(m, y.shape);
    y.shape[0] = n; /* the batch axis of size 1 becomes the sample axis */
    y.data = malloc(sizeof(double) * (size_t)y.size);
    lat = malloc(sizeof(double) * (size_t)n);
    veil_remote_stats st;
    if (!y.data || !lat) goto done;
    if (veil_remote_predict(r, x.data, n, (int)conc, y.data, lat, &st) != VEIL_OK) {
        fprintf(stderr, "veil client: %s\n", veil_client_last_error());
        goto done;
    }
    int correct = 0;
    for (int64_t i = 0; labels && i < n && i < lab.size; i++) {
        correct += cli_predicted_class(y.data + i * osz, veil_model_output_size_at(m, 0)) == (int64_t)lab.data[i];
    }
    double med = bench_median(lat, (int)n); /* sorts lat */
    printf("samples=%lld ok=%lld lost=0 busy_retries=%d concurrency=%ld throughput_per_s=%.3f latency_median_s=%.3f "
           "latency_p90_s=%.3f latency_p99_s=%.3f",
           (long long)n, (long long)n, st.busy_retries, conc, st.seconds > 0 ? (double)n / st.seconds : 0.0, med,
           lat[(n * 90 + 99) / 100 - 1], lat[(n * 99 + 99) / 100 - 1]);
    if (labels) printf(" accuracy=%.4f", (double)correct / (double)n);
    printf("\n");
    if (nout && cli_save_outputs("client", output, nout, m, y.data, n) != VEIL_OK) goto done;
    rc = 0;
done:
    free(lat);
    free(y.data);
    veil_remote_close(r);
    veil_array_free(&x), veil_array_free(&lab);
    return rc;
}
