/* The quantized model object: import → quantize → compile, and inference in the three modes. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/container.h"
#include "../core/strbuf.h"
#include "../runtime/circuit_io.h"
#include "model_impl.h"

const char *const veil_mode_names[VEIL_MODE_COUNT] = {"clear", "simulate", "execute"};
_Static_assert(sizeof veil_mode_names / sizeof *veil_mode_names == VEIL_MODE_COUNT, "one name per mode");

static _Thread_local char model_err[512];

const char *veil_model_last_error(void) { return model_err; }

veil_status ml_model_fail(veil_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(model_err, sizeof model_err, fmt, ap);
    va_end(ap);
    return st;
}

void veil_model_options_default(veil_model_options *o)
{
    memset(o, 0, sizeof *o);
    o->n_bits = (veil_n_bits){8, 8, 0, 0};
    o->p_error = ldexp(1, -40);
    o->rounding_method = VEIL_ROUNDING_APPROXIMATE;
    o->auto_rounding = 1;
    o->max_log2_N = 13;
    o->min_agreement = 0.98;
}

void veil_model_free(veil_model *m)
{
    if (!m) return;
    ml_graph_free(m->fg);
    veil_circuit_free(m->circuit);
    veil_secret_key_free(m->sk);
    veil_eval_keys_free(m->ek);
    veil_rng_free(m->rng);
    veil_free(m->report);
    veil_free(m->compile_log);
    veil_free(m);
}

static veil_status check_options(const veil_model_options *o, veil_model_options *eff)
{
    *eff = *o;
    veil_n_bits *nb = &eff->n_bits;
    if (nb->op_inputs < 1 || nb->op_inputs > 16 || nb->op_weights < 1 || nb->op_weights > 16)
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "n_bits: op_inputs and op_weights must be in 1..16 (got %d, %d)",
                             nb->op_inputs, nb->op_weights);
    if (nb->model_inputs == 0) nb->model_inputs = nb->op_inputs > 5 ? nb->op_inputs : 5;
    if (nb->model_outputs == 0) nb->model_outputs = nb->op_inputs > 5 ? nb->op_inputs : 5;
    if (nb->model_inputs < 1 || nb->model_inputs > 16 || nb->model_outputs < 1 || nb->model_outputs > 16)
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "n_bits: model_inputs and model_outputs must be in 1..16");
    if (o->rounding_bits != 0 && (o->rounding_bits < 2 || o->rounding_bits > 8))
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "rounding_threshold_bits must be in 2..8 (got %d)", o->rounding_bits);
    if (o->auto_rounding != 0 && o->auto_rounding != 1)
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "auto_rounding is 0 or 1 (got %d)", o->auto_rounding);
    if (o->max_lookup_bits != 0 && (o->max_lookup_bits < 2 || o->max_lookup_bits > 8))
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "max_lookup_bits must be 0 or in 2..8 (got %d)", o->max_lookup_bits);
    if (o->max_log2_N < 10 || o->max_log2_N > 17)
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "max_log2_N must be in 10..17 (got %d)", o->max_log2_N);
    if (o->clear_inputs >> 16)
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "clear_inputs: bit %d set, past the %d inputs a model may have",
                             31 - __builtin_clz(o->clear_inputs), VEIL_MODEL_MAX_IO);
    if (o->raise_log2_N != 0 && (o->raise_log2_N < o->max_log2_N || o->raise_log2_N > 17))
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "raise_log2_N must be 0 or in max_log2_N..17 (got %d, max_log2_N %d)",
                             o->raise_log2_N, o->max_log2_N);
    if (!(o->min_agreement >= 0 && o->min_agreement <= 1))
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "min_agreement must be in [0, 1]");
    if (!(o->input_clip == 0 || (o->input_clip >= 0.9 && o->input_clip <= 1)) ||
        !(o->activation_clip == 0 || (o->activation_clip >= 0.9 && o->activation_clip <= 1)))
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "input_clip and activation_clip must be 0 (automatic) or in [0.9, 1] "
                                                   "(got %g, %g)", o->input_clip, o->activation_clip);
    if ((unsigned)o->rounding_method >= VEIL_ROUNDING_COUNT)
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "unknown rounding method");
    if (!(o->p_error > 0 && o->p_error < 1) || !(o->global_p_error >= 0 && o->global_p_error < 1))
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "p_error must be in (0, 1)");
    return VEIL_OK;
}

/* One quantization and compilation. On success *c is the circuit and *q the quantization (the
 * caller frees it); on failure q is freed, err holds the quantizer's message and cerr the
 * compiler's first line. *choice: whether the output could take the other form (output_choice). */
static veil_status quantize_compile(const ml_graph *fg, const double *inputset, size_t nsamples,
                                    const veil_model_options *o, int output_lookup, ml_quantized *q, veil_circuit **c,
                                    int *choice, char *err, size_t errlen, char *cerr, size_t cerrlen)
{
    *c = NULL;
    cerr[0] = 0;
    veil_status st = ml_quantize(fg, inputset, nsamples, o, output_lookup, q, err, errlen);
    if (st != VEIL_OK) return st;
    *choice = q->output_choice;
    int64_t isz = 0;
    for (int i = 0; i < q->nin; i++) isz += q->in[i].size;
    /* veil_compile reads sample s's input i at samples[s · nin + i] */
    const int64_t **samples = veil_malloc(sizeof(int64_t *) * nsamples * (size_t)q->nin + 1);
    if (!samples) {
        ml_quantized_free(q);
        snprintf(err, errlen, "out of memory");
        return VEIL_ERR_NOMEM;
    }
    for (size_t s = 0; s < nsamples; s++)
        for (int i = 0, off = 0; i < q->nin; off += (int)q->in[i].size, i++)
            samples[s * (size_t)q->nin + (size_t)i] = q->inputset_q + s * (size_t)isz + (size_t)off;
    veil_compile_config cfg;
    veil_compile_config_default(&cfg);
    cfg.p_error = o->p_error;
    cfg.global_p_error = o->global_p_error;
    cfg.single_precision = o->single_precision;
    st = veil_compile(q->g, samples, nsamples, &cfg, c);
    veil_free(samples);
    if (st != VEIL_OK) {
        /* the compiler's first line is its one-line summary (the annotated listing follows) */
        const char *ce = veil_compiler_last_error();
        snprintf(cerr, cerrlen, "%.*s", (int)strcspn(ce, "\n"), ce);
        ml_quantized_free(q);
        *c = NULL;
    }
    return st;
}

static double circuit_cost(const veil_circuit *c)
{
    veil_circuit_stats s;
    veil_circuit_get_stats(c, &s);
    return s.cost;
}

/* One compilation at options o: a wide linear output either decrypts at full precision (no
 * lookup) or keeps its rounded high bits through one lookup per element; both are compiled and
 * the cheaper one is kept (the compiler constrains a linear output's noise below its lowest bit). */
typedef struct {
    ml_quantized q;
    veil_circuit *c;
    int choice, with_lookup;
    double cost_with, cost_without;
    char err[400], cerr[400];
} attempt;

static veil_status compile_best(const ml_graph *fg, const double *inputset, size_t nsamples,
                                const veil_model_options *o, attempt *a)
{
    memset(a, 0, sizeof *a);
    veil_status st = quantize_compile(fg, inputset, nsamples, o, 0, &a->q, &a->c, &a->choice, a->err, sizeof a->err,
                                      a->cerr, sizeof a->cerr);
    if (!a->choice) return st;
    ml_quantized q2;
    veil_circuit *c2 = NULL;
    char err2[400] = "", cerr2[400] = "";
    int unused;
    veil_status st2 = quantize_compile(fg, inputset, nsamples, o, 1, &q2, &c2, &unused, err2, sizeof err2, cerr2,
                                       sizeof cerr2);
    if (st == VEIL_OK) a->cost_without = circuit_cost(a->c);
    if (st2 == VEIL_OK) a->cost_with = circuit_cost(c2);
    if (st2 == VEIL_OK && (st != VEIL_OK || a->cost_with < a->cost_without)) {
        if (st == VEIL_OK) {
            ml_quantized_free(&a->q);
            veil_circuit_free(a->c);
        }
        a->q = q2;
        a->c = c2;
        a->with_lookup = 1;
        return VEIL_OK;
    }
    if (st2 == VEIL_OK) {
        ml_quantized_free(&q2);
        veil_circuit_free(c2);
    } else if (st != VEIL_OK) { /* neither compiles: the error of the form with the lookup */
        snprintf(a->err, sizeof a->err, "%s", err2);
        snprintf(a->cerr, sizeof a->cerr, "%s", cerr2);
        return st2;
    }
    return st;
}

static void attempt_free(attempt *a)
{
    if (a->c) {
        ml_quantized_free(&a->q);
        veil_circuit_free(a->c);
    }
    a->c = NULL;
}

/* the largest polynomial size (log2) over the circuit's parameter sets */
static unsigned circuit_log2_N(const veil_circuit *c)
{
    unsigned m = 0;
    for (size_t j = 0; j < veil_circuit_partition_count(c); j++) {
        veil_partition_stats s;
        if (veil_circuit_get_partition(c, j, &s) == VEIL_OK && s.params.log2_N > m) m = s.params.log2_N;
    }
    if (m == 0) m = veil_circuit_params(c)->log2_N;
    return m;
}

static unsigned circuit_lookup_bits(const veil_circuit *c)
{
    veil_circuit_stats s;
    veil_circuit_get_stats(c, &s);
    return s.pbs_count ? s.lookup_bits : 0;
}

/* whether an attempt is within the automatic-rounding ceiling */
static int under_ceiling(const veil_model_options *o, const veil_circuit *c)
{
    if (o->max_lookup_bits > 0) return circuit_lookup_bits(c) <= (unsigned)o->max_lookup_bits;
    return circuit_log2_N(c) <= (unsigned)o->max_log2_N;
}

/* Automatic rounding: no rounding when the circuit is within the ceiling; else the widest
 * rounding_bits R (8 down to 2, or max_lookup_bits) whose circuit is. The chosen attempt is *a. */
static veil_status auto_round(const ml_graph *fg, const double *inputset, size_t nsamples, veil_model_options *o,
                              attempt *a, char *why, size_t whylen)
{
    o->rounding_bits = 0;
    veil_status st = compile_best(fg, inputset, nsamples, o, a);
    if (st == VEIL_OK && under_ceiling(o, a->c)) return VEIL_OK;
    if (st != VEIL_OK && st != VEIL_ERR_COMPILE && st != VEIL_ERR_NO_PARAMS) return st; /* not a matter of bit-widths */
    attempt_free(a);
    int top = o->max_lookup_bits > 0 ? (o->max_lookup_bits < 8 ? o->max_lookup_bits : 8) : 8;
    for (int R = top; R >= 2; R--) {
        o->rounding_bits = R;
        st = compile_best(fg, inputset, nsamples, o, a);
        if (st == VEIL_OK && under_ceiling(o, a->c)) return VEIL_OK;
        if (st != VEIL_OK && st != VEIL_ERR_COMPILE && st != VEIL_ERR_NO_PARAMS) return st; /* not a matter of bit-widths */
        if (st == VEIL_OK) st = VEIL_ERR_COMPILE;
        attempt_free(a);
    }
    if (o->max_lookup_bits > 0)
        snprintf(why, whylen, "automatic rounding: no rounding to %d..2 bits keeps every lookup within %d bits",
                 top, o->max_lookup_bits);
    else
        snprintf(why, whylen, "automatic rounding: no rounding to 8..2 bits keeps the parameters at N <= 2^%d "
                              "(raise max_log2_N, --max-log2-n)",
                 o->max_log2_N);
    return st;
}

/* The clear model against the float one on (at most 2000 samples of) the inputset: classes (the
 * first output's label, or its argmax) agree, or, for a regressor (one value per sample, no
 * label), the relative RMS error of the first output. */
static veil_status check_accuracy(veil_model *m, const double *inputset, size_t nsamples, veil_model_accuracy *acc)
{
    memset(acc, 0, sizeof *acc);
    size_t n = nsamples < 2000 ? nsamples : 2000;
    int64_t isz = m->in_total, osz = m->out_total, k = m->out[0].size;
    int label = 0;
    for (int i = 0; i < m->out[0].npost; i++)
        if (m->out[0].post[i].op == ML_OP_SCORES_LABEL || m->out[0].post[i].op == ML_OP_ARGMAX) label = 1;
    acc->classifier = label || k > 1;
    double *y = veil_malloc(sizeof(double) * (size_t)osz + 1), *yf = veil_malloc(sizeof(double) * (size_t)osz + 1);
    double *a = veil_malloc(sizeof(double) * n + 1), *b = veil_malloc(sizeof(double) * n + 1);
    veil_status st = y && yf && a && b ? VEIL_OK : VEIL_ERR_NOMEM;
    size_t agree = 0;
    double snum = 0, ssum = 0, ssq = 0, scnt = 0;
    for (size_t s = 0; s < n && st == VEIL_OK; s++) {
        const double *x = inputset + s * (size_t)isz;
        st = veil_model_forward(m, VEIL_MODE_CLEAR, x, y);
        if (st == VEIL_OK) st = veil_model_float_forward(m, x, yf);
        if (st != VEIL_OK) break;
        if (acc->classifier && (label || k == 1)) {
            agree += y[0] == yf[0];
        } else if (acc->classifier) {
            for (int64_t e = 0; e < k; e++)
                snum += (y[e] - yf[e]) * (y[e] - yf[e]), ssum += yf[e], ssq += yf[e] * yf[e], scnt++;
            int64_t ia = 0, ib = 0;
            for (int64_t e = 1; e < k; e++) {
                if (y[e] > y[ia]) ia = e;
                if (yf[e] > yf[ib]) ib = e;
            }
            agree += ia == ib;
        }
        a[s] = y[0], b[s] = yf[0];
    }
    if (st == VEIL_OK) {
        acc->samples = n;
        acc->agreement = n ? (double)agree / (double)n : 1;
        if (!acc->classifier) {
            double mean = 0, num = 0, den = 0;
            for (size_t s = 0; s < n; s++) mean += b[s] / (double)n;
            for (size_t s = 0; s < n; s++) num += (a[s] - b[s]) * (a[s] - b[s]), den += (b[s] - mean) * (b[s] - mean);
            acc->rel_error = den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0);
        }
        double sden = scnt > 0 ? ssq - ssum * ssum / scnt : 0;
        m->score_err = sden > 0 ? sqrt(snum / sden) : 0;
        acc->checked = 1;
    }
    veil_free(y);
    veil_free(yf);
    veil_free(a);
    veil_free(b);
    return st;
}

static veil_status compile_once(const uint8_t *onnx, size_t len, const double *inputset, size_t nsamples,
                                size_t sample_size, const veil_model_options *opts, veil_model **out)
{
    model_err[0] = 0;
    if (!out) return ml_model_fail(VEIL_ERR_INVALID_ARG, "no output pointer");
    *out = NULL;
    veil_model_options o;
    if (!opts) veil_model_options_default(&o);
    else if (check_options(opts, &o) != VEIL_OK) return VEIL_ERR_INVALID_ARG;
    if (!opts && check_options(&o, &o) != VEIL_OK) return VEIL_ERR_INVALID_ARG;
    if (!inputset || nsamples == 0) return ml_model_fail(VEIL_ERR_INVALID_ARG, "the inputset is empty");
    char err[400] = "";
    veil_model *m = veil_calloc(1, sizeof *m);
    if (!m) return ml_model_fail(VEIL_ERR_NOMEM, "out of memory");
    veil_status st = ml_onnx_read(onnx, len, &m->fg, err, sizeof err);
    if (st != VEIL_OK) {
        veil_model_free(m);
        return ml_model_fail(st, "%s", err);
    }
    int64_t want = 0;
    for (int i = 0; i < m->fg->ninputs; i++) want += m->fg->input_shapes[i].size;
    if ((size_t)want != sample_size) {
        int nin = m->fg->ninputs;
        veil_model_free(m);
        if (nin == 1)
            return ml_model_fail(VEIL_ERR_INVALID_ARG, "the inputset has %zu values per sample, the model's input has %lld",
                                 sample_size, (long long)want);
        return ml_model_fail(VEIL_ERR_INVALID_ARG,
                             "the inputset has %zu values per sample, the model's %d inputs have %lld together", sample_size,
                             nin, (long long)want);
    }
    /* explicit rounding_bits: today's fixed rounding, no automatic choice */
    if (o.rounding_bits > 0) o.auto_rounding = 0;
    attempt a;
    char why[200] = "";
    if (o.auto_rounding)
        st = auto_round(m->fg, inputset, nsamples, &o, &a, why, sizeof why);
    else
        st = compile_best(m->fg, inputset, nsamples, &o, &a);
    if (st != VEIL_OK) {
        veil_model_free(m);
        const char *detail = a.cerr[0] ? a.cerr : a.err;
        if (why[0] && detail[0])
            return ml_model_fail(st, "%s; at 2 bits: %s%s", why, a.cerr[0] ? "compiling the quantized model: " : "",
                                 detail);
        if (why[0]) return ml_model_fail(st, "%s", why);
        if (a.cerr[0]) return ml_model_fail(st, "compiling the quantized model: %s", a.cerr);
        return ml_model_fail(st, "%s", a.err);
    }
    if (o.clear_inputs >> a.q.nin) {
        int bit = 31 - __builtin_clz(o.clear_inputs);
        int nin = a.q.nin;
        attempt_free(&a);
        veil_model_free(m);
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "clear_inputs: input %d is declared clear, the model has %d input%s",
                             bit, nin, nin == 1 ? "" : "s");
    }
    if (o.clear_inputs == ((1u << a.q.nin) - 1)) {
        attempt_free(&a);
        veil_model_free(m);
        return ml_model_fail(VEIL_ERR_INVALID_ARG, "clear_inputs: every input is declared clear (nothing to encrypt)");
    }
    m->opts = o;
    m->circuit = a.c;
    uint8_t id[VEIL_MODEL_ID_BYTES];
    if (veil_circuit_model_id(m->circuit, id) == VEIL_OK) /* the id its bundles will carry (none: cannot be saved) */
        veil_circuit_bind_model(m->circuit, id);
    m->nin = a.q.nin;
    m->nout = a.q.nout;
    m->tree_bits = a.q.tree_bits;
    m->nrounded = a.q.nrounded;
    memcpy(m->in, a.q.in, sizeof m->in);
    memcpy(m->out, a.q.out, sizeof m->out);
    ml_model_totals(m);
    veil_sb rep = {0}, log = {0};
    veil_sb_printf(&rep, "%s", a.q.report ? a.q.report : "");
    if (a.choice && a.with_lookup && a.cost_without > 0)
        veil_sb_printf(&rep, "outputs: one lookup each keeps their rounded high bits (cost %.3g; decrypting them at full "
                             "precision would cost %.3g)\n",
                       a.cost_with, a.cost_without);
    else if (a.choice && a.with_lookup)
        veil_sb_printf(&rep, "outputs: one lookup each keeps their rounded high bits (no parameters decrypt them at "
                             "full precision)\n");
    else if (a.choice)
        veil_sb_printf(&rep, "outputs: decrypted at full precision, no lookup (cost %.3g; one lookup per output would "
                             "cost %.3g)\n",
                       a.cost_without, a.cost_with);
    if (o.auto_rounding) {
        veil_sb_printf(&log, "%s", a.q.rounding_log ? a.q.rounding_log : "");
        int nr = a.q.nrounded;
        if (nr)
            veil_sb_printf(&log, "auto-rounding: rounded %d accumulator%s to %d bits (%s), parameters at N = 2^%u", nr,
                           nr == 1 ? "" : "s", o.rounding_bits,
                           o.rounding_method == VEIL_ROUNDING_EXACT ? "exact" : "approximate",
                           circuit_log2_N(m->circuit));
        else if (circuit_lookup_bits(m->circuit))
            veil_sb_printf(&log, "auto-rounding: nothing to round (every lookup fits at N = 2^%u)",
                           circuit_log2_N(m->circuit));
        else
            veil_sb_printf(&log, "auto-rounding: nothing to round (no lookups)");
        st = check_accuracy(m, inputset, nsamples, &m->acc);
        if (st != VEIL_OK) {
            veil_sb_free(&rep);
            veil_sb_free(&log);
            ml_quantized_free(&a.q);
            veil_model_free(m);
            return ml_model_fail(st, "checking the compiled model against the float one: %s", veil_model_last_error());
        }
        const veil_model_accuracy *ac = &m->acc;
        if (ac->classifier)
            veil_sb_printf(&log, "; clear outputs agree with the float model's on %.1f%% of the inputset (%zu samples)\n",
                           100 * ac->agreement, ac->samples);
        else
            veil_sb_printf(&log, "; clear outputs' relative error against the float model's: %.2f%% of their spread "
                                 "(RMS, %zu samples of the inputset)\n",
                           100 * ac->rel_error, ac->samples);
        /* what would help: a ceiling raised for wider roundings, or for a tree ensemble (nothing to
         * round) wider comparisons, which need the ceiling raised too */
        char fix[200];
        if (m->tree_bits && !nr)
            snprintf(fix, sizeof fix, "give the trees' comparisons more bits (--n-bits %d, whose lookups need a higher "
                                      "--max-log2-n; or let --raise-log2-n do both)", m->tree_bits + 1);
        else
            snprintf(fix, sizeof fix, "raise max_log2_N (--max-log2-n, or let --raise-log2-n do it), n_bits or p_error");
        if (ac->classifier && ac->agreement < o.min_agreement)
            veil_sb_printf(&log, "warning: the compiled model agrees with the float model on only %.1f%% of the "
                                 "inputset (threshold %.1f%%): %s\n",
                           100 * ac->agreement, 100 * o.min_agreement, fix);
        else if (!ac->classifier && ac->rel_error > 1 - o.min_agreement)
            veil_sb_printf(&log, "warning: the compiled model's relative error against the float model is %.2f%% "
                                 "(threshold %.1f%%): %s\n",
                           100 * ac->rel_error, 100 * (1 - o.min_agreement), fix);
        veil_sb_printf(&rep, "%s", log.len ? log.s : "");
    }
    m->report = veil_sb_take(&rep);
    m->compile_log = veil_sb_take(&log);
    ml_quantized_free(&a.q);
    m->max_bits = veil_circuit_max_bit_width(m->circuit);
    *out = m;
    return VEIL_OK;
}

/* Whether the model's check against the float one meets min_agreement, and a score to pick the
 * best of several ceilings by (higher is better). */
static int meets(const veil_model *m, double min_agreement, double *score)
{
    const veil_model_accuracy *a = &m->acc;
    *score = a->classifier ? a->agreement : -a->rel_error;
    return a->classifier ? a->agreement >= min_agreement : a->rel_error <= 1 - min_agreement;
}

/* The compile log and the report start with what the ceiling's raising tried. */
static veil_status prepend_log(veil_model *m, const char *text)
{
    veil_sb log = {0}, rep = {0};
    veil_sb_printf(&log, "%s%s", text, m->compile_log ? m->compile_log : "");
    const char *r = m->report ? m->report : "", *at = m->compile_log ? strstr(r, m->compile_log) : NULL;
    if (at) veil_sb_printf(&rep, "%.*s%s%s", (int)(at - r), r, text, at);
    else veil_sb_printf(&rep, "%s%s", r, text);
    if (!log.s || !rep.s) {
        veil_sb_free(&log);
        veil_sb_free(&rep);
        return ml_model_fail(VEIL_ERR_NOMEM, "out of memory");
    }
    veil_free(m->compile_log);
    veil_free(m->report);
    m->compile_log = veil_sb_take(&log);
    m->report = veil_sb_take(&rep);
    return VEIL_OK;
}

/* Hands out `best`, its log and report started with `text` (freed); frees best when that fails. */
static veil_status keep_with_log(veil_model *best, veil_sb *text, veil_model **out)
{
    veil_status st = text->s && !text->failed ? prepend_log(best, text->s) : ml_model_fail(VEIL_ERR_NOMEM, "out of memory");
    veil_sb_free(text);
    if (st != VEIL_OK) {
        veil_model_free(best);
        return st;
    }
    *out = best;
    return VEIL_OK;
}

/* compile_once; then, when calibration is automatic (input_clip and activation_clip 0) and the
 * model automatic rounding rounded misses min_agreement, percentile pairs at the same options
 * (include/veil/model.h): the one that agrees best is kept, and the log starts with what was
 * tried. */
static veil_status compile_at(const uint8_t *onnx, size_t len, const double *inputset, size_t nsamples,
                              size_t sample_size, const veil_model_options *opts, veil_model **out)
{
    veil_model_options o;
    if (opts) o = *opts;
    else veil_model_options_default(&o);
    veil_status st = compile_once(onnx, len, inputset, nsamples, sample_size, &o, out);
    double best_score, score;
    if (st != VEIL_OK || o.input_clip != 0 || o.activation_clip != 0 || !(*out)->opts.auto_rounding ||
        !(*out)->nrounded || !(*out)->acc.checked || meets(*out, o.min_agreement, &best_score))
        return st;
    static const double ins[] = VEIL_CLIP_INPUTS, vals[] = VEIL_CLIP_VALUES;
    const size_t ni = sizeof ins / sizeof ins[0], nv = sizeof vals / sizeof vals[0];
    veil_model *best = *out;
    *out = NULL;
    double first = 100 * (best->acc.classifier ? best->acc.agreement : best->acc.rel_error);
    int tried = 0;
    /* one axis at a time: the lookups' values with the inputs over their whole range, then the
     * inputs with the best of those (ni + nv − 2 compiles rather than ni · nv − 1) */
    for (int axis = 0; axis < 2; axis++) {
        double keep_v = best->opts.activation_clip ? best->opts.activation_clip : 1;
        for (size_t j = 1; j < (axis ? ni : nv); j++) {
            veil_model_options c = o;
            c.input_clip = axis ? ins[j] : 1, c.activation_clip = axis ? keep_v : vals[j];
            veil_model *m = NULL;
            if (compile_once(onnx, len, inputset, nsamples, sample_size, &c, &m) != VEIL_OK) continue;
            tried++;
            (void)meets(m, o.min_agreement, &score);
            if (score > best_score || (score == best_score && m->score_err < best->score_err)) {
                veil_model_free(best);
                best = m, best_score = score;
            } else {
                veil_model_free(m);
            }
        }
    }
    model_err[0] = 0; /* a pair that did not compile is not this compile's error */
    veil_sb line = {0};
    const char *what = best->acc.classifier ? "agreement" : "relative error";
    double now = 100 * (best->acc.classifier ? best->acc.agreement : best->acc.rel_error);
    if (best->opts.input_clip == 0)
        veil_sb_printf(&line, "calibration: over the values' whole ranges %s %.1f%%; none of %d percentile pairs did "
                              "better: kept the whole ranges\n", what, first, tried);
    else
        veil_sb_printf(&line, "calibration: over the values' whole ranges %s %.1f%%; of %d percentile pairs, inputs "
                              "%g and lookup outputs %g did best: %s %.1f%% (kept; --clip-inputs, --clip-values)\n",
                       what, first, tried, best->opts.input_clip, best->opts.activation_clip, what, now);
    return keep_with_log(best, &line, out);
}

veil_status veil_model_compile_buffer(const uint8_t *onnx, size_t len, const double *inputset, size_t nsamples,
                                      size_t sample_size, const veil_model_options *opts, veil_model **out)
{
    veil_status st = compile_at(onnx, len, inputset, nsamples, sample_size, opts, out);
    double best_score, score;
    if (st != VEIL_OK || !opts || !opts->raise_log2_N || !(*out)->opts.auto_rounding || opts->max_lookup_bits ||
        opts->raise_log2_N <= opts->max_log2_N || !(*out)->acc.checked ||
        meets(*out, opts->min_agreement, &best_score))
        return st;
    /* below min_agreement: the ceiling one step higher at a time */
    veil_model *best = *out;
    *out = NULL;
    veil_sb tried = {0};
    const veil_model_accuracy *a0 = &best->acc;
    veil_sb_printf(&tried, "raise_log2_N: at N <= 2^%d %s %.2f%%", opts->max_log2_N,
                   a0->classifier ? "agreement" : "relative error",
                   100 * (a0->classifier ? a0->agreement : a0->rel_error));
    int met = 0;
    /* a tree ensemble has nothing to round: a higher ceiling serves its comparisons one more bit
     * when n_bits was left to the default (6 bits, 7 at N = 2^14 for the bundled ones; 9 needs
     * 2^16 and 20 GB of keys, and brought rf_diabetes no closer to float than 7) */
    int tree = best->tree_bits && !best->nrounded && opts->n_bits.op_inputs == 8 && opts->n_bits.op_weights == 8;
    for (int L = opts->max_log2_N + 1; L <= opts->raise_log2_N && !met && (!tree || L == opts->max_log2_N + 1); L++) {
        veil_model_options o = *opts;
        o.max_log2_N = L;
        o.raise_log2_N = 0;
        if (tree) o.n_bits.op_inputs = o.n_bits.op_weights = best->tree_bits + 1;
        veil_model *m = NULL;
        if (compile_at(onnx, len, inputset, nsamples, sample_size, &o, &m) != VEIL_OK) {
            veil_sb_printf(&tried, ", at 2^%d no compile (%s)", L, veil_model_last_error());
            break;
        }
        met = meets(m, opts->min_agreement, &score);
        veil_sb_printf(&tried, ", at 2^%d%s %.2f%%", L, tree ? " (the trees' comparisons at one more bit)" : "",
                       100 * (m->acc.classifier ? m->acc.agreement : m->acc.rel_error));
        if (score > best_score) {
            veil_model_free(best);
            best = m, best_score = score;
        } else {
            veil_model_free(m);
        }
    }
    veil_sb_printf(&tried, " (%s %.1f%%): ", best->acc.classifier ? "wanted" : "wanted at most",
                   100 * (best->acc.classifier ? opts->min_agreement : 1 - opts->min_agreement));
    if (met) veil_sb_printf(&tried, "met at N <= 2^%d, kept\n", best->opts.max_log2_N);
    else veil_sb_printf(&tried, "not met up to 2^%d; kept the best, N <= 2^%d\n", opts->raise_log2_N, best->opts.max_log2_N);
    return keep_with_log(best, &tried, out);
}

veil_status veil_model_compile_file(const char *path, const double *inputset, size_t nsamples, size_t sample_size,
                                    const veil_model_options *o, veil_model **out)
{
    if (out) *out = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    veil_status st = veil_file_read_all(path, (size_t)1 << 31, &buf, &len);
    if (st != VEIL_OK) return ml_model_fail(st, "%s: cannot read the model (%s)", path, veil_status_str(st));
    st = veil_model_compile_buffer(buf, len, inputset, nsamples, sample_size, o, out);
    veil_free(buf);
    if (st != VEIL_OK) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", model_err);
        ml_model_fail(st, "%s: %s", path, tmp);
    }
    return st;
}

veil_status veil_model_onnx_input_names(const char *path, char (*names)[VEIL_MODEL_NAME_BYTES], size_t max,
                                        size_t *count)
{
    *count = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    veil_status st = veil_file_read_all(path, (size_t)1 << 31, &buf, &len);
    if (st != VEIL_OK) return ml_model_fail(st, "%s: cannot read the model (%s)", path, veil_status_str(st));
    ml_graph *g = NULL;
    char err[400] = "";
    st = ml_onnx_read(buf, len, &g, err, sizeof err);
    veil_free(buf);
    if (st != VEIL_OK) return ml_model_fail(st, "%s: %s", path, err);
    for (int i = 0; i < g->ninputs && (size_t)i < max; i++)
        snprintf(names[i], VEIL_MODEL_NAME_BYTES, "%s", g->values[g->inputs[i]].name);
    *count = (size_t)g->ninputs < max ? (size_t)g->ninputs : max;
    ml_graph_free(g);
    return VEIL_OK;
}

void ml_model_totals(veil_model *m)
{
    m->in_total = m->out_total = m->qout_total = 0;
    for (int i = 0; i < m->nin; i++) m->in_total += m->in[i].size;
    for (int j = 0; j < m->nout; j++) m->out_total += m->out[j].size, m->qout_total += m->out[j].qsize;
}

size_t veil_model_input_count(const veil_model *m) { return (size_t)m->nin; }
size_t veil_model_output_count(const veil_model *m) { return (size_t)m->nout; }

const char *veil_model_input_name(const veil_model *m, size_t i)
{
    const char *n = veil_circuit_input_name(m->circuit, i);
    return n ? n : "";
}

const char *veil_model_output_name(const veil_model *m, size_t j) { return j < (size_t)m->nout ? m->out[j].name : ""; }

int veil_model_input_shape_at(const veil_model *m, size_t i, int64_t shape[VEIL_MAX_DIMS])
{
    if (i >= (size_t)m->nin) return -1;
    memcpy(shape, m->in[i].shape, sizeof(int64_t) * VEIL_MAX_DIMS);
    return m->in[i].ndim;
}

int veil_model_output_shape_at(const veil_model *m, size_t j, int64_t shape[VEIL_MAX_DIMS])
{
    if (j >= (size_t)m->nout) return -1;
    memcpy(shape, m->out[j].shape, sizeof(int64_t) * VEIL_MAX_DIMS);
    return m->out[j].ndim;
}

int64_t veil_model_input_size_at(const veil_model *m, size_t i) { return i < (size_t)m->nin ? m->in[i].size : -1; }
int64_t veil_model_output_size_at(const veil_model *m, size_t j) { return j < (size_t)m->nout ? m->out[j].size : -1; }
int veil_model_input_shape(const veil_model *m, int64_t shape[VEIL_MAX_DIMS]) { return veil_model_input_shape_at(m, 0, shape); }
int veil_model_output_shape(const veil_model *m, int64_t shape[VEIL_MAX_DIMS]) { return veil_model_output_shape_at(m, 0, shape); }
int64_t veil_model_input_size(const veil_model *m) { return m->in_total; }
int64_t veil_model_output_size(const veil_model *m) { return m->out_total; }
int64_t veil_model_quantized_output_size(const veil_model *m) { return m->qout_total; }
const veil_circuit *veil_model_circuit(const veil_model *m) { return m->circuit; }
const char *veil_model_report(const veil_model *m) { return m->report ? m->report : ""; }
unsigned veil_model_max_bit_width(const veil_model *m) { return m->max_bits; }
const char *veil_model_compile_log(const veil_model *m) { return m->compile_log ? m->compile_log : ""; }
void veil_model_get_accuracy(const veil_model *m, veil_model_accuracy *a) { *a = m->acc; }

veil_status veil_model_quantize_input(const veil_model *m, const double *x, int64_t *q)
{
    for (int i = 0, off = 0; i < m->nin; off += (int)m->in[i].size, i++)
        for (int64_t e = off; e < off + m->in[i].size; e++) {
            if (!isfinite(x[e]))
                return ml_model_fail(VEIL_ERR_INVALID_ARG, "input '%s', element %lld is not finite",
                                     veil_model_input_name(m, (size_t)i), (long long)(e - off));
            q[e] = (int64_t)ml_quantize_value(&m->in[i].q, ml_input_pre(&m->in[i], e - off, x[e]));
        }
    return VEIL_OK;
}

static veil_status ensure_rng(veil_model *m)
{
    if (m->rng) return VEIL_OK;
    veil_status st = veil_rng_new_os(&m->rng);
    return st == VEIL_OK ? st : ml_model_fail(st, "no randomness from the operating system");
}

veil_status veil_model_seed_simulation(veil_model *m, const uint8_t seed[VEIL_SEED_BYTES])
{
    veil_rng_free(m->rng);
    m->rng = NULL;
    return veil_rng_new_seeded(&m->rng, seed);
}

veil_status veil_model_keygen(veil_model *m, const uint8_t *seed)
{
    veil_rng *rng = NULL;
    veil_status st = seed ? veil_rng_new_seeded(&rng, seed) : veil_rng_new_os(&rng);
    if (st != VEIL_OK) return ml_model_fail(st, "no randomness for key generation");
    veil_secret_key_free(m->sk);
    veil_eval_keys_free(m->ek);
    m->sk = NULL, m->ek = NULL;
    st = veil_circuit_keygen(m->circuit, rng, &m->sk, &m->ek);
    veil_rng_free(rng);
    if (st != VEIL_OK) return ml_model_fail(st, "key generation failed: %s", veil_status_str(st));
    return VEIL_OK;
}

veil_status veil_model_quantized_forward(veil_model *m, veil_mode mode, const int64_t *q, int64_t *q_out)
{
    int64_t *in[ML_MAX_IO], *outs[ML_MAX_IO];
    veil_circuit_io_split(m->circuit, 0, (int64_t *)q, in, ML_MAX_IO); /* read only */
    veil_circuit_io_split(m->circuit, 1, q_out, outs, ML_MAX_IO);
    const int64_t *const *ins = (const int64_t *const *)in;
    veil_status st;
    switch (mode) {
    case VEIL_MODE_CLEAR: st = veil_circuit_clear(m->circuit, ins, outs); break;
    case VEIL_MODE_SIMULATE:
        if ((st = ensure_rng(m)) != VEIL_OK) return st;
        st = veil_circuit_simulate(m->circuit, ins, m->rng, outs);
        break;
    case VEIL_MODE_EXECUTE:
        if (!m->sk) return ml_model_fail(VEIL_ERR_INVALID_ARG, "execute needs keys: call veil_model_keygen first");
        if (!m->opts.clear_inputs) {
            st = veil_circuit_encrypt_run_decrypt(m->circuit, m->sk, m->ek, ins, outs);
            break;
        }
        { /* clear inputs travel as the client sends them, and run as the server runs them */
            uint8_t *req = NULL;
            size_t rl = 0;
            veil_ciphertexts *x = NULL, *y = NULL;
            st = veil_circuit_encrypt_serialize_mixed(m->circuit, m->sk, ins, m->opts.clear_inputs, NULL, &req, &rl);
            if (st == VEIL_OK) st = veil_ciphertexts_deserialize_mixed(m->circuit, m->opts.clear_inputs, req, rl, &x);
            if (st == VEIL_OK) st = veil_circuit_run(m->circuit, m->ek, x, 0, &y);
            if (st == VEIL_OK) st = veil_circuit_decrypt(m->circuit, m->sk, y, outs);
            veil_free(req);
            veil_ciphertexts_free(x);
            veil_ciphertexts_free(y);
        }
        break;
    default: return ml_model_fail(VEIL_ERR_INVALID_ARG, "unknown mode %d", (int)mode);
    }
    if (st != VEIL_OK) return ml_model_fail(st, "%s evaluation failed: %s", veil_mode_names[mode], veil_status_str(st));
    return VEIL_OK;
}

veil_status veil_model_dequantize_output(const veil_model *m, const int64_t *q_out, double *y)
{
    for (int j = 0; j < m->nout; j++) {
        const ml_out_info *o = &m->out[j];
        ml_tensor t, r;
        veil_status st = ml_tensor_alloc(&t, o->qndim, o->qshape);
        if (st != VEIL_OK) return ml_model_fail(st, "out of memory");
        for (int64_t i = 0; i < t.size; i++) t.data[i] = o->scale * ((double)q_out[i] - o->zp);
        st = ml_post_apply(o->post, o->npost, &t, &r);
        ml_tensor_free(&t);
        if (st != VEIL_OK) return ml_model_fail(st, "output '%s': post-processing failed", o->name);
        memcpy(y, r.data, sizeof(double) * (size_t)r.size);
        ml_tensor_free(&r);
        q_out += o->qsize;
        y += o->size;
    }
    return VEIL_OK;
}

veil_status veil_model_forward(veil_model *m, veil_mode mode, const double *x, double *y)
{
    int64_t n = veil_model_input_size(m), k = veil_model_quantized_output_size(m);
    int64_t *q = veil_malloc(sizeof(int64_t) * (size_t)(n + k) + 1);
    if (!q) return ml_model_fail(VEIL_ERR_NOMEM, "out of memory");
    veil_status st = veil_model_quantize_input(m, x, q);
    if (st == VEIL_OK) st = veil_model_quantized_forward(m, mode, q, q + n);
    if (st == VEIL_OK) st = veil_model_dequantize_output(m, q + n, y);
    veil_free(q);
    return st;
}

veil_status veil_model_float_forward(const veil_model *m, const double *x, double *y)
{
    if (!m->fg) return ml_model_fail(VEIL_ERR_UNSUPPORTED, "this model was loaded from a bundle: it has no float graph");
    ml_tensor in[ML_MAX_IO], out[ML_MAX_IO];
    char err[256] = "";
    veil_status st = VEIL_OK;
    int ni = 0;
    memset(out, 0, sizeof out);
    memset(in, 0, sizeof in);
    for (; ni < m->nin && st == VEIL_OK; ni++) {
        st = ml_tensor_alloc(&in[ni], m->in[ni].ndim, m->in[ni].shape);
        if (st == VEIL_OK) memcpy(in[ni].data, x, sizeof(double) * (size_t)in[ni].size), x += in[ni].size;
    }
    if (st != VEIL_OK) ni--;
    if (st == VEIL_OK) st = ml_forward(m->fg, in, out, err, sizeof err);
    for (int i = 0; i < ni; i++) ml_tensor_free(&in[i]);
    for (int j = 0; j < m->nout; j++) {
        if (st == VEIL_OK) memcpy(y, out[j].data, sizeof(double) * (size_t)out[j].size), y += out[j].size;
        ml_tensor_free(&out[j]);
    }
    if (st != VEIL_OK) return ml_model_fail(st, "%s", err[0] ? err : "out of memory");
    return VEIL_OK;
}
