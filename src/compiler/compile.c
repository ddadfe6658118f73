/* veil_compile: bounds on the inputset, checks, lowering, parameters, statistics. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "circuit.h"
#include "core/strbuf.h"
#include "lower.h"
#include "partition.h"

/* A buffer of the thread's own rather than a heap string kept between calls: nothing of a failed
 * compile outlives it (tests/core/test_alloc_fail counts every block); a longer annotated listing
 * is cut, its first line (the reason) always kept. */
static _Thread_local char last_error[16384];

const char *veil_compiler_last_error(void) { return last_error; }

static void set_error(char *msg) /* takes ownership */
{
    if (!msg) last_error[0] = 0;
    else if (strlen(msg) < sizeof last_error) memcpy(last_error, msg, strlen(msg) + 1);
    else snprintf(last_error, sizeof last_error, "%.*s\n…", (int)sizeof last_error - 8, msg);
    veil_free(msg);
}

void veil_compile_config_default(veil_compile_config *cfg)
{
    if (!cfg) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->p_error = 0x1p-40;
    cfg->max_tlu_bits = 16;
}

enum { MAX_MARKS = 64, CLEAR_SAMPLES = 64 };

typedef struct {
    veil_ir_mark marks[MAX_MARKS];
    char *texts[MAX_MARKS];
    int n;
} marks;

static void mark(marks *m, int node, char *text) /* takes ownership of text */
{
    if (m->n == MAX_MARKS || !text) {
        veil_free(text);
        return;
    }
    m->texts[m->n] = text;
    m->marks[m->n] = (veil_ir_mark){node, text};
    m->n++;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char buf[512];
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    veil_sb b = {0};
    veil_sb_printf(&b, "%s", buf);
    return veil_sb_take(&b);
}

/* "node %3: first line, second line" then the annotated listing. */
static void report(const veil_graph *g, marks *m)
{
    veil_sb b = {0};
    if (m->n) {
        veil_sb_printf(&b, "node %%%d: ", m->marks[0].node);
        for (const char *s = m->marks[0].message; *s; s++) {
            if (*s == '\n') veil_sb_printf(&b, ", ");
            else veil_sb_printf(&b, "%c", *s);
        }
        /* a message split over the value and its lookup reads as one sentence */
        if (m->n > 1 && m->marks[1].node != m->marks[0].node && strncmp(m->marks[1].message, "but ", 4) == 0)
            veil_sb_printf(&b, ", %s", m->marks[1].message);
    }
    char *listing = veil_ir_format(g, 1, m->marks, m->n);
    veil_sb_printf(&b, "\n\n%s", listing ? listing : "");
    veil_free(listing);
    for (int i = 0; i < m->n; i++) veil_free(m->texts[i]);
    m->n = 0;
    set_error(veil_sb_take(&b));
}

static void type_name(const veil_node_rec *n, char *buf, size_t cap)
{
    int sg;
    unsigned bits = veil_ir_bits(n->lo, n->hi, &sg);
    snprintf(buf, cap, "%s%u", sg ? "int" : "uint", bits);
}

/* Checks that need bounds but no lowering. */
static void check_graph(const veil_graph *g, marks *m, int *runtime_clear)
{
    uint8_t *dep = veil_calloc(g->count ? g->count : 1, 1);
    if (!dep) return;
    for (size_t i = 0; i < g->count; i++) {
        const veil_node_rec *n = &g->nodes[i];
        if (n->op == VEIL_OP_INPUT && !n->enc) dep[i] = 1;
        for (int k = 0; k < n->nin; k++)
            if (dep[n->in[k]] && !n->enc) dep[i] = 1;
        if (n->has_bounds && (n->lo < -((int64_t)1 << 62) || n->hi >= ((int64_t)1 << 62)))
            mark(m, (int)i, fmt("this value does not fit in 63 bits on the inputset"));
        if (!n->enc) continue;
        for (int k = 0; k < n->nin; k++)
            if (dep[n->in[k]]) *runtime_clear = 1;
        if (n->op == VEIL_OP_CONV2D && (g->nodes[n->in[1]].enc || (n->nin > 2 && g->nodes[n->in[2]].enc)))
            mark(m, (int)i, fmt("this convolution has encrypted weights or bias\n"
                                "but only clear weights and bias are supported"));
        if (n->op == VEIL_OP_TABLE) {
            const veil_node_rec *x = &g->nodes[n->in[0]];
            int sg;
            unsigned bits = veil_ir_bits(x->lo, x->hi, &sg);
            uint64_t need = bits >= 63 ? UINT64_MAX : (uint64_t)1 << (sg ? bits - 1 : bits);
            if ((uint64_t)n->ndata < need) {
                char t[32];
                type_name(x, t, sizeof t);
                mark(m, (int)i, fmt("this table of %zu entries cannot be looked up with a %s value\n"
                                    "which needs at least %llu entries",
                                    n->ndata, t, (unsigned long long)need));
            }
        }
    }
    for (size_t j = 0; j < g->noutputs; j++)
        if (!g->nodes[g->outputs[j]].enc)
            mark(m, g->outputs[j], fmt("this clear value is returned\nbut only encrypted values can be returned"));
    veil_free(dep);
}

double veil_circuit_tlu_p_error(const veil_params *p, unsigned precision, double a, double b)
{
    double var = a * veil_var_pbs(p) + b * veil_var_fresh_big(p) + veil_var_keyswitch(p) + veil_var_modswitch(p);
    return erfc(exp2(-(double)precision - 2.0) / sqrt(2.0 * var));
}

static void fill_stats(veil_circuit *c)
{
    const veil_program *p = c->prog;
    veil_circuit_stats *s = &c->stats;
    veil_key_sizes ks = veil_params_key_sizes(&c->params);
    uint64_t ct = 8 * ((uint64_t)veil_params_big_lwe_dim(&c->params) + 1);
    memset(s, 0, sizeof *s);
    s->precision = p->precision;
    s->lookup_bits = p->tlu_precision;
    s->pbs_count = p->n_tlu;
    s->ks_count = p->n_br; /* one key switch and one blind rotation per input of the shared lookups */
    s->linear_terms = p->n_terms;
    s->max_norm2 = sqrt(p->tlu_a);
    s->bsk_bytes = p->n_tlu ? ks.bsk_bytes : 0;
    s->ksk_bytes = p->n_tlu ? ks.ksk_bytes : 0;
    for (size_t i = 0; i < p->ninputs; i++)
        if (p->inputs[i].encrypted) s->input_bytes += ct * (uint64_t)p->inputs[i].size;
    for (size_t j = 0; j < p->noutputs; j++) s->output_bytes += ct * (uint64_t)p->outputs[j].size;
    s->cost = veil_params_cost(&c->params, p->n_br, p->n_terms);
    s->p_error = p->n_tlu ? veil_circuit_tlu_p_error(&c->params, p->tlu_precision, p->tlu_a * p->noise_scale,
                                                     p->tlu_b * p->noise_scale)
                          : 0;
    s->global_p_error = p->n_tlu ? -expm1((double)p->n_tlu * log1p(-s->p_error)) : 0;
    s->single_cost = s->cost;
    s->bsk_seeded_bytes = p->n_tlu ? ks.bsk_seeded_bytes : 0;
    s->ksk_seeded_bytes = p->n_tlu ? ks.ksk_seeded_bytes : 0;
    c->nparts = 1;
    c->parts[0] = c->params;
    c->pstats[0] = (veil_partition_stats){.params = c->params, .lookup_bits = p->tlu_precision, .p_error = s->p_error};
    veil_circuit_count_partitions(c);
}

void veil_circuit_count_partitions(veil_circuit *c)
{
    const veil_program *p = c->prog;
    veil_circuit_stats *s = &c->stats;
    s->partitions = c->nparts;
    s->cross_ks_count = 0;
    uint32_t *dims = NULL;
    if (!p->interface_only && veil_circuit_slot_dims(c, p, &dims) != VEIL_OK) dims = NULL;
    for (size_t j = 0; j < c->nparts; j++) c->pstats[j].params = c->parts[j];
    if (!p->interface_only) { /* a client bundle keeps the counts as compiled */
        for (size_t j = 0; j < c->nparts; j++) c->pstats[j].pbs_count = c->pstats[j].cross_ks_count = 0;
        /* key switches: one per input of the lookups that share a blind rotation */
        uint32_t *seen = veil_calloc(p->nslots ? p->nslots : 1, sizeof(uint32_t));
        for (size_t k = 0; k < p->ninstr; k++) {
            const veil_instr *I = &p->instr[k];
            if (I->kind != VEIL_INSTR_TLU || I->part >= c->nparts) continue;
            veil_partition_stats *q = &c->pstats[I->part];
            q->pbs_count += I->count;
            if (dims && seen && c->nparts > 1)
                for (uint32_t o = 0; o < I->count; o++)
                    if (veil_mv_first(I, o, seen) && dims[I->in_slot[o]] != veil_params_big_lwe_dim(&c->parts[I->part]))
                        q->cross_ks_count++;
        }
        veil_free(seen);
    }
    uint64_t bsk = 0, ksk = 0, bsks = 0, ksks = 0;
    for (size_t j = 0; j < c->nparts; j++) {
        veil_partition_stats *q = &c->pstats[j];
        veil_key_sizes ks = veil_params_key_sizes(&c->parts[j]);
        int used = q->pbs_count > 0;
        q->bsk_bytes = used ? ks.bsk_bytes : 0;
        q->ksk_bytes = used ? ks.ksk_bytes : 0;
        q->bsk_seeded_bytes = used ? ks.bsk_seeded_bytes : 0;
        q->ksk_seeded_bytes = used ? ks.ksk_seeded_bytes : 0;
        bsk += q->bsk_bytes, ksk += q->ksk_bytes, bsks += q->bsk_seeded_bytes, ksks += q->ksk_seeded_bytes;
        s->cross_ks_count += q->cross_ks_count;
    }
    s->bsk_bytes = bsk, s->ksk_bytes = ksk, s->bsk_seeded_bytes = bsks, s->ksk_seeded_bytes = ksks;
    veil_free(dims);
}

veil_status veil_circuit_slot_dims(const veil_circuit *c, const veil_program *p, uint32_t **out)
{
    *out = NULL;
    uint32_t *d = veil_calloc(p->nslots ? p->nslots : 1, sizeof(uint32_t));
    if (!d) return VEIL_ERR_NOMEM;
    const uint32_t top = veil_params_big_lwe_dim(&c->params);
    for (size_t i = 0; i < p->ninputs; i++)
        if (p->inputs[i].encrypted)
            for (int64_t e = 0; e < p->inputs[i].size; e++) d[p->inputs[i].base + e] = top;
    for (size_t k = 0; k < p->ninstr; k++) {
        const veil_instr *I = &p->instr[k];
        if (I->kind == VEIL_INSTR_TLU) {
            if (I->part >= c->nparts) {
                veil_free(d);
                return VEIL_ERR_MALFORMED;
            }
            uint32_t dim = veil_params_big_lwe_dim(&c->parts[I->part]);
            for (uint32_t o = 0; o < I->count; o++) d[I->out_base + o] = dim;
            continue;
        }
        for (uint32_t o = 0; o < I->count; o++) {
            uint32_t x = 0;
            for (uint64_t t = I->term_off[o]; t < I->term_off[o + 1]; t++)
                if (d[I->term_slot[t]] > x) x = d[I->term_slot[t]];
            d[I->out_base + o] = x ? x : top; /* a constant: any key; the longest, as an input */
        }
    }
    *out = d;
    return VEIL_OK;
}

/* Precision partitions (partition.c): from the single-precision choice in c->params, one set per
 * lookup width, merged where they coincide; c->params becomes the sets' shared key. Keeps the
 * single set when partitions bring nothing (or cannot be analysed). */
static veil_status partition(veil_circuit *c, double p_error)
{
    veil_program *p = c->prog;
    veil_part_problem pr;
    veil_status st = veil_part_analyze(p, p_error, &pr);
    if (st == VEIL_ERR_UNSUPPORTED) return VEIL_OK;
    if (st != VEIL_OK) return st;
    veil_params sets[VEIL_MAX_PARTS];
    if ((st = veil_part_optimize(&pr, &c->params, sets)) != VEIL_OK) goto done;
    double cost = veil_part_cost(&pr, sets), single = c->stats.cost;
    /* merge classes of equal sets */
    size_t part_of[VEIL_MAX_PARTS], np = 0;
    veil_params parts[VEIL_MAX_PARTS];
    unsigned bits[VEIL_MAX_PARTS] = {0};
    double perr[VEIL_MAX_PARTS] = {0};
    uint32_t ksd[VEIL_MAX_PARTS] = {0};
    for (size_t j = 0; j < pr.m; j++) {
        size_t q = 0;
        while (q < np && veil_params_fingerprint(&parts[q]) != veil_params_fingerprint(&sets[j])) q++;
        if (q == np) parts[np++] = sets[j];
        part_of[j] = q;
        if (pr.cls[j].bits > bits[q]) bits[q] = pr.cls[j].bits;
        uint32_t d = veil_part_ks_dim(&pr, sets, j);
        if (d > ksd[q]) ksd[q] = d;
        double pe = veil_part_p_error(&pr, sets, j);
        if (pe > perr[q]) perr[q] = pe;
    }
    if (np < 2 || !(cost < single)) goto done; /* the single set it is */
    for (size_t q = 0; q < np; q++) {
        snprintf(parts[q].name, sizeof parts[q].name, "auto-p%u", bits[q]);
        parts[q].ks_in_dim = ksd[q] > veil_params_big_lwe_dim(&parts[q]) ? ksd[q] : 0; /* never shorter */
    }
    veil_params shared;
    if ((st = veil_params_shared(parts, np, &shared)) != VEIL_OK) goto done;
    for (size_t k = 0; k < p->ninstr; k++)
        if (p->instr[k].kind == VEIL_INSTR_TLU) p->instr[k].part = (unsigned)part_of[veil_part_class_of(&pr, p->instr[k].bits)];
    c->params = shared;
    c->nparts = np;
    double ok = 1;
    for (size_t q = 0; q < np; q++) {
        c->parts[q] = parts[q];
        c->pstats[q] = (veil_partition_stats){.params = parts[q], .lookup_bits = bits[q], .p_error = perr[q]};
    }
    veil_circuit_count_partitions(c);
    veil_circuit_stats *s = &c->stats;
    s->cost = cost;
    s->p_error = 0;
    for (size_t q = 0; q < np; q++) {
        if (perr[q] > s->p_error) s->p_error = perr[q];
        ok *= exp((double)c->pstats[q].pbs_count * log1p(-perr[q]));
    }
    s->global_p_error = 1 - ok;
    s->input_bytes = s->output_bytes = 0;
    uint64_t ct = 8 * ((uint64_t)veil_params_big_lwe_dim(&shared) + 1);
    for (size_t i = 0; i < p->ninputs; i++)
        if (p->inputs[i].encrypted) s->input_bytes += ct * (uint64_t)p->inputs[i].size;
    for (size_t j = 0; j < p->noutputs; j++) s->output_bytes += ct * (uint64_t)p->outputs[j].size;
done:
    veil_part_problem_free(&pr);
    return st;
}

veil_status veil_compile(veil_graph *g, const int64_t *const *inputset, size_t nsamples, const veil_compile_config *cfg,
                         veil_circuit **out)
{
    if (!out) return VEIL_ERR_INVALID_ARG;
    *out = NULL;
    set_error(NULL);
    veil_compile_config dflt;
    veil_compile_config_default(&dflt);
    if (!cfg) cfg = &dflt;
    if (!g) {
        set_error(fmt("no graph"));
        return VEIL_ERR_INVALID_ARG;
    }
    if (g->status != VEIL_OK) {
        set_error(fmt("the graph has an error: %s", g->error));
        return g->status;
    }
    if (g->noutputs == 0) {
        set_error(fmt("the graph has no output (call veil_graph_output)"));
        return VEIL_ERR_INVALID_ARG;
    }
    if (nsamples == 0 || (!inputset && g->ninputs)) {
        set_error(fmt("an inputset of at least one sample is required"));
        return VEIL_ERR_INVALID_ARG;
    }
    double p_error = cfg->p_error;
    if (cfg->global_p_error > 0) {
        if (!(cfg->global_p_error < 1)) {
            set_error(fmt("global_p_error must be in (0, 1), got %g", cfg->global_p_error));
            return VEIL_ERR_INVALID_ARG;
        }
    } else if (!(p_error > 0 && p_error < 1)) {
        set_error(fmt("p_error must be in (0, 1), got %g", p_error));
        return VEIL_ERR_INVALID_ARG;
    }
    unsigned max_bits = cfg->max_tlu_bits ? cfg->max_tlu_bits : 16;
    if (max_bits > 24) max_bits = 24;

    marks m = {0};
    veil_status st = VEIL_OK;
    int64_t **cv = NULL;
    veil_program *prog = NULL;
    veil_circuit *c = NULL;

    /* 1. bounds */
    for (size_t i = 0; i < g->count; i++)
        if (g->nodes[i].op != VEIL_OP_CONST) g->nodes[i].has_bounds = 0;
    for (size_t s = 0; s < nsamples; s++) {
        int64_t **vals;
        int bad;
        for (size_t i = 0; i < g->ninputs; i++)
            if (!inputset[s * g->ninputs + i]) {
                set_error(fmt("inputset sample %zu has no value for input '%s'", s, g->nodes[g->inputs[i]].name));
                st = VEIL_ERR_INVALID_ARG;
                goto done;
            }
        st = veil_ir_eval_all(g, inputset + s * g->ninputs, &vals, &bad);
        if (st == VEIL_ERR_EVAL) {
            mark(&m, bad, fmt("this node fails on inputset sample %zu\nbecause a table index is out of range", s));
            report(g, &m);
            goto done;
        }
        if (st != VEIL_OK) {
            set_error(fmt("evaluating the inputset failed: %s", veil_status_str(st)));
            goto done;
        }
        for (size_t i = 0; i < g->count; i++) {
            veil_node_rec *n = &g->nodes[i];
            if (n->op == VEIL_OP_CONST && n->has_bounds) continue; /* its bounds are its values' */
            for (int64_t e = 0; e < n->size; e++) {
                int64_t v = vals[i][e];
                if (!n->has_bounds) n->lo = n->hi = v, n->has_bounds = 1;
                if (v < n->lo) n->lo = v;
                if (v > n->hi) n->hi = v;
            }
        }
        if (s == 0) cv = vals;
        else veil_ir_vals_free(g, vals);
    }

    /* 2. checks */
    int runtime_clear = 0;
    check_graph(g, &m, &runtime_clear);
    if (m.n) {
        report(g, &m);
        st = VEIL_ERR_COMPILE;
        goto done;
    }

    /* 3. lowering */
    veil_lower_issue issues[MAX_MARKS / 2];
    size_t nissues = 0;
    st = veil_lower(g, cv, max_bits, &prog, issues, MAX_MARKS / 2, &nissues);
    if (st == VEIL_ERR_COMPILE) {
        for (size_t i = 0; i < nissues && i < MAX_MARKS / 2; i++) {
            veil_lower_issue *is = &issues[i];
            if (is->input_node >= 0 && is->input_node != is->tlu_node) {
                mark(&m, is->input_node, fmt("this %u-bit value is used as an input to a table lookup", is->bits));
                mark(&m, is->tlu_node, fmt("but only up to %u-bit table lookups are supported", max_bits));
            } else {
                mark(&m, is->tlu_node, fmt("this %u-bit value is used as an input to a table lookup\n"
                                           "but only up to %u-bit table lookups are supported",
                                           is->bits, max_bits));
            }
        }
        report(g, &m);
        goto done;
    }
    if (st != VEIL_OK) {
        set_error(fmt("lowering failed: %s", veil_status_str(st)));
        goto done;
    }

    /* with clear inputs, the program depends on their values: the noise bound must hold for
     * the programs of every inputset sample (up to CLEAR_SAMPLES of them) */
    for (size_t smp = 1; runtime_clear && smp < nsamples && smp < CLEAR_SAMPLES; smp++) {
        int64_t **cs;
        int bad;
        veil_program *other = NULL;
        st = veil_ir_eval_clear(g, inputset + smp * g->ninputs, &cs, &bad);
        if (st == VEIL_OK) st = veil_lower(g, cs, max_bits, &other, issues, MAX_MARKS / 2, &nissues);
        if (st == VEIL_OK) {
            prog->tlu_a = prog->tlu_a > other->tlu_a ? prog->tlu_a : other->tlu_a;
            prog->tlu_b = prog->tlu_b > other->tlu_b ? prog->tlu_b : other->tlu_b;
            prog->out_a = prog->out_a > other->out_a ? prog->out_a : other->out_a;
            prog->out_b = prog->out_b > other->out_b ? prog->out_b : other->out_b;
            if (other->precision != prog->precision || other->tlu_precision != prog->tlu_precision) st = VEIL_ERR_EVAL;
        }
        veil_program_free(other);
        if (cs) veil_ir_vals_free(g, cs);
        if (st != VEIL_OK) {
            set_error(fmt("lowering with the clear inputs of inputset sample %zu failed: %s", smp, veil_status_str(st)));
            goto done;
        }
    }

    /* 4. parameters */
    if (cfg->global_p_error > 0)
        p_error = prog->n_tlu ? -expm1(log1p(-cfg->global_p_error) / (double)prog->n_tlu) : cfg->global_p_error;
    const double ns = prog->noise_scale;
    veil_opt_problem pr = {.precision = prog->tlu_precision, .tlu_a = prog->tlu_a * ns, .tlu_b = prog->tlu_b * ns,
                           .out_a = prog->out_a * ns, .out_b = prog->out_b * ns, .n_tlu = prog->n_br,
                           .n_terms = prog->n_terms, .p_error = p_error};
    if (!(c = veil_calloc(1, sizeof *c))) {
        st = VEIL_ERR_NOMEM;
        goto done;
    }
    if (cfg->params) {
        if (veil_params_check(cfg->params) != VEIL_OK || !veil_params_feasible(cfg->params, &pr)) {
            set_error(fmt("parameters %s do not meet this circuit: %u-bit precision (needs log2 N >= %u), "
                          "p_error %.3g per lookup, largest 2-norm %.3g",
                          cfg->params->name, pr.precision, pr.precision + 1, p_error, sqrt(pr.tlu_a)));
            st = VEIL_ERR_NO_PARAMS;
            goto done;
        }
        c->params = *cfg->params;
    } else {
        st = veil_params_optimize(&pr, &c->params);
        if (st == VEIL_ERR_NO_PARAMS) {
            int node = prog->worst_tlu_origin >= 0 ? prog->worst_tlu_origin : g->outputs[0];
            if (prog->worst_tlu_exact)
                mark(&m, node, fmt("exact rounding reads the lowest bit of this %u-bit value\n"
                                   "so its noise must stay below half a unit: no 128-bit parameters do that\n"
                                   "with p_error %.3g\n"
                                   "at a 2-norm of %.3g; use approximate rounding, fewer bits, or a larger p_error",
                                   prog->precision, p_error, sqrt(prog->tlu_a)));
            else
                mark(&m, node, fmt("no 128-bit parameters give %u-bit table lookups with p_error %.3g\n"
                                   "at a 2-norm of %.3g; lower the bit-width (round_bit_pattern or a narrower\n"
                                   "inputset) or the weights feeding this lookup, or raise p_error",
                                   pr.precision, p_error, sqrt(pr.tlu_a)));
            report(g, &m);
            goto done;
        }
        if (st != VEIL_OK) {
            set_error(fmt("parameter search failed: %s", veil_status_str(st)));
            goto done;
        }
    }

    /* 5. the circuit */
    c->prog = prog;
    prog = NULL;
    if (!(c->listing = veil_ir_format(g, 1, NULL, 0))) {
        st = VEIL_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < g->count; i++) {
        const veil_node_rec *n = &g->nodes[i];
        int sg;
        if (n->enc && n->has_bounds) {
            unsigned b = veil_ir_bits(n->lo, n->hi, &sg);
            if (b > c->max_bit_width) c->max_bit_width = b;
        }
    }
    if (runtime_clear && (st = veil_ir_clone(g, &c->graph)) != VEIL_OK) goto done;
    fill_stats(c);
    /* clear inputs that reach encrypted operations re-lower the program at every evaluation: its
     * noise is only bounded for the one set */
    if (!cfg->single_precision && !cfg->params && !runtime_clear && c->prog->n_tlu &&
        (st = partition(c, p_error)) != VEIL_OK)
        goto done;
    *out = c;
    c = NULL;
done:
    if (cv) veil_ir_vals_free(g, cv);
    veil_program_free(prog);
    veil_circuit_free(c);
    for (int i = 0; i < m.n; i++) veil_free(m.texts[i]);
    return st;
}

void veil_circuit_free(veil_circuit *c)
{
    if (!c) return;
    if (c->rt_cache && c->rt_cache_free) c->rt_cache_free(c->rt_cache);
    veil_program_free(c->prog);
    veil_graph_free(c->graph);
    veil_free(c->listing);
    veil_free(c);
}

const char *veil_circuit_format(const veil_circuit *c) { return c && c->listing ? c->listing : ""; }
unsigned veil_circuit_max_bit_width(const veil_circuit *c) { return c ? c->max_bit_width : 0; }
const veil_params *veil_circuit_params(const veil_circuit *c) { return c ? &c->params : NULL; }

size_t veil_circuit_partition_count(const veil_circuit *c) { return c ? c->nparts : 0; }

veil_status veil_circuit_get_partition(const veil_circuit *c, size_t j, veil_partition_stats *s)
{
    if (!c || !s || j >= c->nparts) return VEIL_ERR_INVALID_ARG;
    *s = c->pstats[j];
    return VEIL_OK;
}

void veil_circuit_get_stats(const veil_circuit *c, veil_circuit_stats *s)
{
    if (c && s) *s = c->stats;
}

size_t veil_circuit_input_count(const veil_circuit *c) { return c ? c->prog->ninputs : 0; }
size_t veil_circuit_output_count(const veil_circuit *c) { return c ? c->prog->noutputs : 0; }

int64_t veil_circuit_input_size(const veil_circuit *c, size_t i)
{
    return c && i < c->prog->ninputs ? c->prog->inputs[i].size : -1;
}

int64_t veil_circuit_output_size(const veil_circuit *c, size_t j)
{
    return c && j < c->prog->noutputs ? c->prog->outputs[j].size : -1;
}

int veil_circuit_input_encrypted(const veil_circuit *c, size_t i)
{
    return c && i < c->prog->ninputs ? c->prog->inputs[i].encrypted : 0;
}

const char *veil_circuit_input_name(const veil_circuit *c, size_t i)
{
    return c && i < c->prog->ninputs ? c->prog->inputs[i].name : NULL;
}

int64_t veil_circuit_io_split(const veil_circuit *c, int outputs, int64_t *flat, int64_t **ptrs, size_t max)
{
    size_t n = outputs ? c->prog->noutputs : c->prog->ninputs;
    if (n > max) return -1;
    int64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (ptrs) ptrs[i] = flat ? flat + off : NULL;
        off += outputs ? c->prog->outputs[i].size : c->prog->inputs[i].size;
    }
    return off;
}

veil_status veil_circuit_program(const veil_circuit *c, const int64_t *const *inputs, const veil_program **use,
                                 veil_program **tmp)
{
    *tmp = NULL;
    *use = c->prog;
    if (c->prog->interface_only) return VEIL_ERR_UNSUPPORTED;
    if (!c->graph) return VEIL_OK;
    int64_t **cv;
    int bad;
    veil_lower_issue issue;
    size_t nissues;
    veil_status st = veil_ir_eval_clear(c->graph, inputs, &cv, &bad);
    if (st != VEIL_OK) return st;
    st = veil_lower(c->graph, cv, 24, tmp, &issue, 1, &nissues);
    veil_ir_vals_free(c->graph, cv);
    if (st == VEIL_OK && ((*tmp)->precision != c->prog->precision || (*tmp)->tlu_precision != c->prog->tlu_precision))
        st = VEIL_ERR_EVAL;
    if (st != VEIL_OK) {
        veil_program_free(*tmp);
        *tmp = NULL;
        return st == VEIL_ERR_COMPILE ? VEIL_ERR_EVAL : st;
    }
    *use = *tmp;
    return VEIL_OK;
}
