/* veil compile MODEL.onnx --inputset X.npy [options] -o DIR: compile an ONNX model into
 * DIR/client.veil and DIR/server.veil. */
#include <jansson.h>
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
    fprintf(f,
            "usage: veil compile MODEL.onnx --inputset X.npy -o DIR [options]\n"
            "  --inputset X.npy       representative inputs, shape (N, ...) of the model's input; a model\n"
            "                         of several inputs takes one --inputset per input, in its order\n"
            "  -o, --output DIR       writes DIR/client.veil and DIR/server.veil\n"
            "  --n-bits N             post-training: op inputs and weights N bits, model inputs and\n"
            "                         outputs max(5, N) (default 8)\n"
            "  --n-bits-json JSON     {\"op_inputs\": 8, \"op_weights\": 8, \"model_inputs\": 5,\n"
            "                         \"model_outputs\": 5}; with --qat only model_inputs/model_outputs\n"
            "  --qat                  the model is quantization-aware (QONNX Quant nodes)\n"
            "  --rounding-bits R      round every accumulator wider than R bits (2..8) to R bits before\n"
            "                         its lookup (no automatic rounding)\n"
            "  --rounding-method M    approximate (default) or exact\n"
            "  --no-auto-rounding     no rounding unless --rounding-bits (default: automatic rounding where\n"
            "                         a lookup would need parameters past the ceiling)\n"
            "  --max-log2-n L         automatic rounding's ceiling: parameters at N <= 2^L (default 13)\n"
            "  --raise-log2-n L       when the compiled model misses --min-agreement on the inputset,\n"
            "                         compile again with the ceiling one step higher, up to N = 2^L\n"
            "                         (each step about doubles the keys); keeps the first that meets it\n"
            "  --max-lookup-bits B    automatic rounding's ceiling in bits instead (2..8)\n"
            "  --min-agreement A      warn when the compiled model agrees with the float one on less than\n"
            "                         this fraction of the inputset (default 0.98)\n"
            "  --clip-inputs P        calibrate the model inputs' quantizers from the (1 - P) to the P\n"
            "                         quantile of the inputset (0.9..1; 1: min to max), what lies beyond\n"
            "                         saturating (default: min to max, unless a rounded model misses\n"
            "                         --min-agreement: then the best of a few percentiles, logged)\n"
            "  --clip-values P        the same for the values each lookup produces\n"
            "  --p-error P            error probability of each lookup (default 2^-40)\n"
            "  --global-p-error P     error probability of one whole inference instead\n"
            "  --clear-input NAME     send model input NAME in the clear, not encrypted (the server sees\n"
            "                         it; repeat for several)\n"
            "  --single-precision     one parameter set for the whole circuit (default: one per lookup\n"
            "                         width, chosen jointly, when that is cheaper)\n");
}

static int parse_n_bits_json(const char *s, int qat, veil_n_bits *nb)
{
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    if (!j || !json_is_object(j)) {
        fprintf(stderr, "veil compile: --n-bits-json: not a JSON object (%s)\n", j ? "other JSON value" : err.text);
        json_decref(j);
        return 0;
    }
    static const char *const keys[4] = {"op_inputs", "op_weights", "model_inputs", "model_outputs"};
    int *fields[4] = {&nb->op_inputs, &nb->op_weights, &nb->model_inputs, &nb->model_outputs};
    const char *key;
    json_t *v;
    int ok = 1;
    json_object_foreach(j, key, v)
    {
        int k = 0;
        while (k < 4 && strcmp(key, keys[k]) != 0) k++;
        if (k == 4) {
            fprintf(stderr, "veil compile: --n-bits-json: unknown key '%s' (op_inputs, op_weights, model_inputs, "
                            "model_outputs)\n", key);
            ok = 0;
        } else if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 16) {
            fprintf(stderr, "veil compile: --n-bits-json: '%s' must be an integer in 1..16\n", key);
            ok = 0;
        } else if (qat && k < 2) {
            fprintf(stderr, "veil compile: --n-bits-json: a quantization-aware model takes its op bit-widths from "
                            "its Quant nodes; only model_inputs and model_outputs may be set\n");
            ok = 0;
        } else
            *fields[k] = (int)json_integer_value(v);
    }
    if (ok && !qat && (!json_object_get(j, "op_inputs") || !json_object_get(j, "op_weights"))) {
        fprintf(stderr, "veil compile: --n-bits-json: op_inputs and op_weights are required\n");
        ok = 0;
    }
    json_decref(j);
    return ok;
}

int veil_cmd_compile(int argc, char **argv)
{
    const char *onnx = NULL, *inputset[VEIL_MODEL_MAX_IO], *out = NULL, *nbj = NULL, *clear[VEIL_MODEL_MAX_IO];
    int nset = 0, nclear = 0;
    veil_model_options o;
    veil_model_options_default(&o);
    long v;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--single-precision"))
            o.single_precision = 1;
        else if (!strcmp(a, "--qat"))
            o.qat = 1;
        else if (!strcmp(a, "--no-auto-rounding"))
            o.auto_rounding = 0;
        else if (a[0] == '-' && a[1]) {
            if (!(val = cli_value("compile", argc, argv, &i))) return 2;
            if (!strcmp(a, "--inputset")) {
                if (nset == VEIL_MODEL_MAX_IO) {
                    fprintf(stderr, "veil compile: at most %d --inputset files\n", VEIL_MODEL_MAX_IO);
                    return 2;
                }
                inputset[nset++] = val;
            }
            else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = val;
            else if (!strcmp(a, "--clear-input")) {
                if (nclear == VEIL_MODEL_MAX_IO) {
                    fprintf(stderr, "veil compile: at most %d --clear-input names\n", VEIL_MODEL_MAX_IO);
                    return 2;
                }
                clear[nclear++] = val;
            }
            else if (!strcmp(a, "--n-bits")) {
                if (!cli_int("compile", a, val, 1, 16, &v)) return 2;
                o.n_bits.op_inputs = o.n_bits.op_weights = (int)v;
            } else if (!strcmp(a, "--n-bits-json")) nbj = val;
            else if (!strcmp(a, "--rounding-bits")) {
                if (!cli_int("compile", a, val, 2, 8, &v)) return 2;
                o.rounding_bits = (int)v;
            } else if (!strcmp(a, "--rounding-method")) {
                if (!strcmp(val, "exact")) o.rounding_method = VEIL_ROUNDING_EXACT;
                else if (!strcmp(val, "approximate")) o.rounding_method = VEIL_ROUNDING_APPROXIMATE;
                else {
                    fprintf(stderr, "veil compile: --rounding-method is exact or approximate (got '%s')\n", val);
                    return 2;
                }
            } else if (!strcmp(a, "--max-log2-n")) {
                if (!cli_int("compile", a, val, 10, 17, &v)) return 2;
                o.max_log2_N = (int)v;
            } else if (!strcmp(a, "--raise-log2-n")) {
                if (!cli_int("compile", a, val, 10, 17, &v)) return 2;
                o.raise_log2_N = (int)v;
            } else if (!strcmp(a, "--max-lookup-bits")) {
                if (!cli_int("compile", a, val, 2, 8, &v)) return 2;
                o.max_lookup_bits = (int)v;
            } else if (!strcmp(a, "--min-agreement")) {
                if (!cli_prob("compile", a, val, &o.min_agreement)) return 2;
            } else if (!strcmp(a, "--clip-inputs") || !strcmp(a, "--clip-values")) {
                char *end;
                double pc = strtod(val, &end);
                if (*end || end == val || !(pc >= 0.9 && pc <= 1)) {
                    fprintf(stderr, "veil compile: %s is a percentile in [0.9, 1], 1 for the whole range (got '%s')\n", a,
                            val);
                    return 2;
                }
                *(!strcmp(a, "--clip-inputs") ? &o.input_clip : &o.activation_clip) = pc;
            } else if (!strcmp(a, "--p-error")) {
                if (!cli_prob("compile", a, val, &o.p_error)) return 2;
            } else if (!strcmp(a, "--global-p-error")) {
                if (!cli_prob("compile", a, val, &o.global_p_error)) return 2;
            } else {
                fprintf(stderr, "veil compile: unknown option '%s' (veil compile --help)\n", a);
                return 2;
            }
        } else if (!onnx)
            onnx = a;
        else {
            fprintf(stderr, "veil compile: one model at a time (extra argument '%s')\n", a);
            return 2;
        }
    }
    if (!onnx || !nset || !out) {
        fprintf(stderr, "veil compile: needs MODEL.onnx, --inputset X.npy and -o DIR\n");
        usage(stderr);
        return 2;
    }
    if (nbj && !parse_n_bits_json(nbj, o.qat, &o.n_bits)) return 2;
    if (nclear) { /* names → input positions */
        char names[VEIL_MODEL_MAX_IO][VEIL_MODEL_NAME_BYTES];
        size_t nin = 0;
        if (veil_model_onnx_input_names(onnx, names, VEIL_MODEL_MAX_IO, &nin) != VEIL_OK) {
            fprintf(stderr, "veil compile: %s\n", veil_model_last_error());
            return 1;
        }
        for (int k = 0; k < nclear; k++) {
            size_t i = 0;
            while (i < nin && strcmp(names[i], clear[k]) != 0) i++;
            if (i == nin) {
                fprintf(stderr, "veil compile: --clear-input '%s': the model has no such input (", clear[k]);
                for (size_t j = 0; j < nin; j++) fprintf(stderr, "%s'%s'", j ? ", " : "", names[j]);
                fprintf(stderr, ")\n");
                return 2;
            }
            o.clear_inputs |= 1u << i;
        }
    }
    veil_array x;
    if (cli_load_inputs("compile", inputset, nset, NULL, onnx, &x) != VEIL_OK) return 1;
    double t0 = bench_now_s();
    veil_model *m = NULL;
    veil_status st = veil_model_compile_file(onnx, x.data, (size_t)x.shape[0], (size_t)(x.size / x.shape[0]), &o, &m);
    double t = bench_now_s() - t0;
    veil_array_free(&x);
    if (st != VEIL_OK) {
        fprintf(stderr, "veil compile: %s\n", veil_model_last_error());
        return 1;
    }
    if (veil_model_save(m, out) != VEIL_OK) {
        fprintf(stderr, "veil compile: %s\n", veil_model_last_error());
        veil_model_free(m);
        return 1;
    }
    fputs(veil_model_compile_log(m), stdout);
    const veil_circuit *c = veil_model_circuit(m);
    veil_circuit_stats s;
    veil_circuit_get_stats(c, &s);
    const veil_params *p = veil_circuit_params(c);
    char pbs[64];
    if (s.ks_count && s.ks_count < s.pbs_count) snprintf(pbs, sizeof pbs, "%zu lookups in %zu PBS", s.pbs_count, s.ks_count);
    else snprintf(pbs, sizeof pbs, "%zu PBS", s.pbs_count);
    printf("compiled %s in %.3f s: max bit-width %u, %s per inference, parameters %s (N 2^%u, n %u), "
           "evaluation keys %.1f MB (%.1f MB compressed)\n",
           onnx, t, veil_model_max_bit_width(m), pbs, p->name, p->log2_N, p->n,
           (double)(s.bsk_bytes + s.ksk_bytes) / 1e6,
           (double)(s.bsk_seeded_bytes + s.ksk_seeded_bytes) / 1e6);
    printf("wrote %s/client.veil and %s/server.veil\n", out, out);
    veil_model_free(m);
    return 0;
}
