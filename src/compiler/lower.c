/* Lowering: every encrypted element is kept as an affine form Σ w·slot + c over ciphertext slots;
 * linear operations combine forms without emitting anything, so all the linear algebra between
 * two rounds of lookups becomes one LINEAR instruction, and its exact weights give the noise
 * growth. A lookup materializes its input forms (LINEAR), then emits one TLU instruction whose
 * table is the composition of the fused element-wise chain, evaluated over the input's type range.
 * Operations built on lookups:
 *   a < b, ...     one lookup on a − b
 *   max(a, b)      b + relu(a − b);  min(a, b) = a − relu(a − b)
 *   a · b          ⌊(a+b)²/4⌋ − ⌊(a−b)²/4⌋ (exact: a+b and a−b have the same parity)
 *   max pool       a tree of max(a, b);  average pool: ⌊Σ / (KH·KW)⌋
 *                  of a non-decreasing lookup T: max(T(i), T(j)) = T(max(i, j)), so the lookup
 *                  returns its index, the tree compares indices and one lookup per window
 *                  applies T (the comparisons read the rounded width, not the table's) */
#include "lower.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"

typedef struct {
    int64_t c;
    uint32_t n;
    uint32_t *slot;
    int64_t *w;
} form;

typedef enum { ST_NODE, ST_ADDK, ST_MULK, ST_RSUBK, ST_CMP0, ST_RELU, ST_DIV, ST_SQ4, ST_TAB } step_kind;
typedef struct {
    step_kind kind;
    int64_t k; /* ST_TAB: the table's length */
    const veil_node_rec *node;
    const int64_t *tab; /* ST_TAB: x ↦ tab[x] */
} step;

/* a node's own lookup (the last of its chain): the instruction and the index range it reads */
typedef struct {
    int64_t instr, klo, khi;
} node_tlu;

typedef struct {
    const veil_graph *g;
    int64_t *const *cv;
    veil_arena *ar;
    veil_program *p;
    size_t cap_instr;
    double *na, *nb; /* noise multipliers per slot (bootstrapped, fresh) */
    size_t cap_slots;
    int64_t *acc; /* accumulator over slots */
    uint8_t *hit;
    uint32_t *touched;
    size_t ntouched, cap_acc;
    int64_t acc_c;
    form ***forms; /* per node: one form pointer per element */
    unsigned max_bits;
    veil_lower_issue *issues;
    size_t max_issues, nissues;
    int extracting; /* inside exact_floor */
    node_tlu last;  /* emit_tlu's final lookup */
    node_tlu *own;  /* per node (instr -1: none) */
    veil_status st;
} lower_ctx;


/* a saturated product only widens a range, which then fails the lookup-width check */
static int64_t sat_mul(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
    return r;
}

static void *alloc(lower_ctx *L, size_t n)
{
    void *p = veil_arena_alloc(L->ar, n ? n : 1);
    if (!p && L->st == VEIL_OK) L->st = VEIL_ERR_NOMEM;
    return p;
}

/* ---- slots and the accumulator ---------------------------------------------------------------- */
static int grow(void **arr, size_t elem, size_t old, size_t cap)
{
    void *n = veil_calloc(cap, elem);
    if (!n) return 0;
    if (old) memcpy(n, *arr, old * elem);
    veil_free(*arr);
    *arr = n;
    return 1;
}

static uint32_t new_slots(lower_ctx *L, uint32_t count, double a, double b)
{
    size_t need = (size_t)L->p->nslots + count;
    if (need > UINT32_MAX) {
        L->st = VEIL_ERR_UNSUPPORTED;
        return 0;
    }
    if (need > L->cap_slots) {
        size_t cap = L->cap_slots ? L->cap_slots : 1024;
        while (cap < need) cap *= 2;
        if (!grow((void **)&L->na, sizeof(double), L->cap_slots, cap) ||
            !grow((void **)&L->nb, sizeof(double), L->cap_slots, cap) ||
            !grow((void **)&L->acc, sizeof(int64_t), L->cap_slots, cap) ||
            !grow((void **)&L->hit, 1, L->cap_slots, cap) ||
            !grow((void **)&L->touched, sizeof(uint32_t), L->cap_slots, cap)) {
            L->st = VEIL_ERR_NOMEM;
            return 0;
        }
        L->cap_slots = cap;
    }
    uint32_t base = L->p->nslots;
    for (uint32_t i = 0; i < count; i++) L->na[base + i] = a, L->nb[base + i] = b;
    L->p->nslots += count;
    return base;
}

static void acc_add(lower_ctx *L, const form *f, int64_t w)
{
    L->acc_c = veil_wadd(L->acc_c, veil_wmul(w, f->c));
    for (uint32_t t = 0; t < f->n; t++) {
        uint32_t s = f->slot[t];
        if (!L->hit[s]) {
            L->hit[s] = 1;
            L->touched[L->ntouched++] = s;
        }
        L->acc[s] = veil_wadd(L->acc[s], veil_wmul(w, f->w[t]));
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static form *acc_take(lower_ctx *L)
{
    qsort(L->touched, L->ntouched, sizeof(uint32_t), cmp_u32);
    uint32_t n = 0;
    for (size_t i = 0; i < L->ntouched; i++) n += L->acc[L->touched[i]] != 0;
    form *f = alloc(L, sizeof *f);
    uint32_t *sl = alloc(L, sizeof(uint32_t) * n);
    int64_t *w = alloc(L, sizeof(int64_t) * n);
    if (f && sl && w) {
        f->c = L->acc_c;
        f->n = n;
        f->slot = sl;
        f->w = w;
        n = 0;
        for (size_t i = 0; i < L->ntouched; i++) {
            uint32_t s = L->touched[i];
            if (L->acc[s]) sl[n] = s, w[n] = L->acc[s], n++;
        }
    }
    for (size_t i = 0; i < L->ntouched; i++) L->acc[L->touched[i]] = 0, L->hit[L->touched[i]] = 0;
    L->ntouched = 0;
    L->acc_c = 0;
    return f;
}

static form *form_const(lower_ctx *L, int64_t c)
{
    form *f = alloc(L, sizeof *f);
    if (f) f->c = c;
    return f;
}

static form *form_slot(lower_ctx *L, uint32_t s)
{
    form *f = alloc(L, sizeof *f);
    uint32_t *sl = alloc(L, sizeof(uint32_t));
    int64_t *w = alloc(L, sizeof(int64_t));
    if (!f || !sl || !w) return NULL;
    sl[0] = s;
    w[0] = 1;
    *f = (form){0, 1, sl, w};
    return f;
}

/* a·x + b·y (+ k) */
static form *combine(lower_ctx *L, const form *x, int64_t a, const form *y, int64_t b, int64_t k)
{
    if (x) acc_add(L, x, a);
    if (y) acc_add(L, y, b);
    L->acc_c = veil_wadd(L->acc_c, k);
    return acc_take(L);
}

/* ---- instructions ---------------------------------------------------------------------------- */
static veil_instr *new_instr(lower_ctx *L, veil_instr_kind kind, int origin, uint32_t count)
{
    veil_program *p = L->p;
    if (p->ninstr == L->cap_instr) {
        size_t cap = L->cap_instr ? 2 * L->cap_instr : 16;
        if (!grow((void **)&p->instr, sizeof(veil_instr), L->cap_instr, cap)) {
            L->st = VEIL_ERR_NOMEM;
            return NULL;
        }
        L->cap_instr = cap;
    }
    veil_instr *in = &p->instr[p->ninstr++];
    memset(in, 0, sizeof *in);
    in->kind = kind;
    in->origin = origin;
    in->input_node = -1;
    in->count = count;
    return in;
}

static int is_pure_slot(const form *f) { return f->n == 1 && f->w[0] == 1 && f->c == 0; }

/* Slots holding the forms: a pure slot is reused, the rest computed by one LINEAR instruction. */
static uint32_t *materialize(lower_ctx *L, form *const *f, size_t count, int origin)
{
    uint32_t *slots = alloc(L, sizeof(uint32_t) * count);
    if (!slots || L->st != VEIL_OK) return NULL;
    size_t todo = 0, terms = 0;
    for (size_t e = 0; e < count; e++)
        if (!is_pure_slot(f[e])) todo++, terms += f[e]->n;
    for (size_t e = 0; e < count; e++)
        if (is_pure_slot(f[e])) slots[e] = f[e]->slot[0];
    if (!todo) return slots;
    uint32_t base = new_slots(L, (uint32_t)todo, 0, 0);
    veil_instr *in = new_instr(L, VEIL_INSTR_LINEAR, origin, (uint32_t)todo);
    if (!in || L->st != VEIL_OK) return NULL;
    in->out_base = base;
    in->term_off = veil_malloc(sizeof(uint64_t) * (todo + 1));
    in->term_slot = veil_malloc(sizeof(uint32_t) * (terms ? terms : 1));
    in->term_w = veil_malloc(sizeof(int64_t) * (terms ? terms : 1));
    in->cst = veil_malloc(sizeof(int64_t) * todo);
    if (!in->term_off || !in->term_slot || !in->term_w || !in->cst) {
        L->st = VEIL_ERR_NOMEM;
        return NULL;
    }
    size_t o = 0, t = 0;
    for (size_t e = 0; e < count; e++) {
        if (is_pure_slot(f[e])) continue;
        uint32_t s = base + (uint32_t)o;
        double a = 0, b = 0;
        in->term_off[o] = t;
        in->cst[o] = f[e]->c;
        for (uint32_t j = 0; j < f[e]->n; j++, t++) {
            double w2 = (double)f[e]->w[j] * (double)f[e]->w[j];
            in->term_slot[t] = f[e]->slot[j];
            in->term_w[t] = f[e]->w[j];
            a += w2 * L->na[f[e]->slot[j]];
            b += w2 * L->nb[f[e]->slot[j]];
        }
        L->na[s] = a;
        L->nb[s] = b;
        slots[e] = s;
        o++;
    }
    in->term_off[o] = t;
    /* the forms now live in their slots: a later reader of the same form (another lookup of one
     * node's value, through a slice) reads the slot instead of computing it again, so lookups of one
     * value share its slot (and can share a blind rotation, multivalue.c) */
    for (size_t e = 0; e < count; e++)
        if (f[e]->n >= 1 && !is_pure_slot(f[e])) *f[e] = (form){0, 1, f[e]->slot, f[e]->w}, f[e]->slot[0] = slots[e], f[e]->w[0] = 1;
    L->p->n_terms += t;
    return slots;
}

static int64_t chain_eval(const step *st, int n, int64_t x)
{
    for (int i = 0; i < n; i++) {
        const step *s = &st[i];
        int ok = 1;
        switch (s->kind) {
        case ST_NODE: x = veil_ir_unary(s->node, x, &ok); break; /* out of a table: 0, never reached */
        case ST_ADDK: x = veil_wadd(x, s->k); break;
        case ST_MULK: x = veil_wmul(x, s->k); break;
        case ST_RSUBK: x = (int64_t)((uint64_t)s->k - (uint64_t)x); break;
        case ST_CMP0: x = veil_ir_binary((veil_op)s->k, x, 0); break;
        case ST_RELU: x = x > 0 ? x : 0; break;
        case ST_DIV: {
            int64_t q = x / s->k;
            if (x % s->k != 0 && ((x < 0) != (s->k < 0))) q--;
            x = q;
            break;
        }
        case ST_TAB: x = x >= 0 && x < s->k ? s->tab[x] : 0; break;
        case ST_SQ4: {
            /* ⌊x²/4⌋ without overflow for |x| < 2^31 */
            int64_t h = x / 2, r = x - 2 * h; /* x = 2h + r, r in {-1, 0, 1} */
            x = veil_wadd(veil_wmul(h, h), veil_wmul(h, r));
            break;
        }
        }
    }
    return x;
}

/* One TLU instruction reading `bits` bits at `shift` of each form in `in` (already offset to be
 * nonnegative); the caller fills the returned instruction's table (2^bits entries). */
static veil_instr *tlu_instr(lower_ctx *L, int origin, int input_node, form *const *in, size_t count,
                             unsigned bits, unsigned shift, form **out)
{
    uint32_t *src = materialize(L, in, count, origin);
    if (!src) return NULL;
    uint32_t base = new_slots(L, (uint32_t)count, 1, 0);
    veil_instr *ins = new_instr(L, VEIL_INSTR_TLU, origin, (uint32_t)count);
    if (!ins || L->st != VEIL_OK) return NULL;
    ins->input_node = input_node;
    ins->out_base = base;
    ins->bits = bits;
    ins->shift = shift;
    ins->exact_low = L->extracting;
    ins->in_slot = veil_malloc(sizeof(uint32_t) * count);
    ins->table = veil_malloc(sizeof(int64_t) << bits);
    if (!ins->in_slot || !ins->table) {
        L->st = VEIL_ERR_NOMEM;
        return NULL;
    }
    memcpy(ins->in_slot, src, sizeof(uint32_t) * count);
    /* the input noise counts relative to the read bits: a shift of l gives it 4^l more room */
    double room = ldexp(1.0, -2 * (int)shift);
    for (size_t e = 0; e < count; e++) {
        if (L->na[src[e]] * room > L->p->tlu_a) {
            L->p->tlu_a = L->na[src[e]] * room;
            L->p->worst_tlu_origin = origin;
            L->p->worst_tlu_exact = L->extracting;
        }
        if (L->nb[src[e]] * room > L->p->tlu_b) L->p->tlu_b = L->nb[src[e]] * room;
        out[e] = form_slot(L, base + (uint32_t)e);
    }
    if (bits + shift > L->p->precision) L->p->precision = bits + shift;
    if (bits > L->p->tlu_precision) L->p->tlu_precision = bits;
    L->p->n_tlu += count;
    return ins;
}

/* Exact t − (t mod 2^l) for nonnegative t (< 2^width), with lookups of at most `cap` bits.
 * The low bits go in chunks [s, s+c), from the bottom; the bits below s are already zero, so a
 * lookup reading c bits at shift s reads them exactly, but the negacyclic bootstrapping also sees
 * bit s+c (it falls on the padding bit) as a sign: (−1)^b·T[r]. So each chunk takes two lookups:
 * T = 2^(s+c−1) gives ±2^(s+c−1), which clears bit s+c linearly; then T[r] = r·2^s reads the
 * chunk itself, which is subtracted. The first chunk reads at shift 0: its input noise has no
 * room beyond the encoding's own, which is what exactness costs over approximate rounding. */
static form **exact_floor(lower_ctx *L, int origin, int input_node, form **t, size_t count, unsigned l,
                          unsigned width, unsigned cap)
{
    unsigned nchunks = (l + cap - 1) / cap, s = 0;
    if (width > L->p->precision) L->p->precision = width;
    form **sign = alloc(L, sizeof(form *) * count), **low = alloc(L, sizeof(form *) * count);
    if (!sign || !low) return NULL;
    L->extracting = 1;
    for (unsigned k = 0; k < nchunks && L->st == VEIL_OK; k++) {
        unsigned c = (l - s + (nchunks - k) - 1) / (nchunks - k);
        int64_t half = (int64_t)1 << (s + c - 1);
        uint32_t *ts = materialize(L, t, count, origin); /* once, for both lookups */
        if (!ts) return NULL;
        for (size_t e = 0; e < count; e++) t[e] = form_slot(L, ts[e]);
        veil_instr *a = tlu_instr(L, origin, input_node, t, count, c, s, sign);
        if (!a) return NULL;
        for (int64_t i = 0; i < ((int64_t)1 << c); i++) a->table[i] = half;
        for (size_t e = 0; e < count; e++) sign[e] = combine(L, t[e], 1, sign[e], 1, -half);
        veil_instr *b = tlu_instr(L, origin, input_node, sign, count, c, s, low);
        if (!b || L->st != VEIL_OK) return NULL;
        for (int64_t i = 0; i < ((int64_t)1 << c); i++) b->table[i] = i << s;
        for (size_t e = 0; e < count; e++) t[e] = combine(L, t[e], 1, low[e], -1, 0);
        s += c;
    }
    L->extracting = 0;
    return L->st == VEIL_OK ? t : NULL;
}

/* One lookup per element of `in` (values within [lo, hi]); returns the output forms. */
static form **emit_tlu(lower_ctx *L, int origin, int input_node, form *const *in, size_t count, int64_t lo,
                       int64_t hi, const step *steps, int nsteps)
{
    form **out = alloc(L, sizeof(form *) * count);
    if (!out || L->st != VEIL_OK) return NULL;
    /* constants added before a rounding go to the linear side (free there), so that the rounding
     * leads the chain and the bootstrapping reads only the kept bits */
    int nadd = 0;
    int64_t kadd = 0;
    while (nadd < nsteps && steps[nadd].kind == ST_ADDK) kadd = veil_wadd(kadd, steps[nadd].k), nadd++;
    if (nadd > 0 && nadd < nsteps && steps[nadd].kind == ST_NODE &&
        (steps[nadd].node->op == VEIL_OP_ROUND || steps[nadd].node->op == VEIL_OP_TRUNC)) {
        form **moved = alloc(L, sizeof(form *) * count);
        if (!moved) return NULL;
        for (size_t e = 0; e < count && L->st == VEIL_OK; e++) moved[e] = combine(L, in[e], 1, NULL, 0, kadd);
        in = moved, lo += kadd, hi += kadd, steps += nadd, nsteps -= nadd;
    }
    int sg;
    unsigned width = veil_ir_bits(lo, hi, &sg), bits = width, shift = 0;
    int64_t off = sg ? (int64_t)1 << (width - 1) : 0, half = 0;
    int exact = 0;
    /* rounding or truncation first in the chain. Approximate: the bootstrapping reads only the
     * kept high bits of x + off, rounded to nearest by the half-box test polynomial itself.
     * Exact: the low bits are extracted and subtracted first (exact_floor), then the same
     * lookup reads a multiple of 2^l, at the center of its box. */
    if (nsteps > 0 && steps[0].kind == ST_NODE &&
        (steps[0].node->op == VEIL_OP_ROUND || steps[0].node->op == VEIL_OP_TRUNC) &&
        steps[0].node->attr[VEIL_A_LSBS] < width) {
        int rnd = steps[0].node->op == VEIL_OP_ROUND;
        shift = (unsigned)steps[0].node->attr[VEIL_A_LSBS];
        exact = !(rnd && steps[0].node->attr[VEIL_A_APPROX]);
        half = rnd ? (int64_t)1 << (shift - 1) : 0;
        int64_t khi = (hi + off + half) >> shift;
        bits = veil_ir_bits(0, khi, &sg);
        steps++, nsteps--;
    }
    if (bits > L->max_bits) {
        if (L->nissues < L->max_issues) L->issues[L->nissues] = (veil_lower_issue){origin, input_node, bits};
        L->nissues++;
        for (size_t e = 0; e < count; e++) out[e] = form_const(L, 0); /* go on to find every culprit */
        return out;
    }
    form **shifted = alloc(L, sizeof(form *) * count);
    if (!shifted) return NULL;
    if (width > L->p->precision) L->p->precision = width;
    if (exact) {
        for (size_t e = 0; e < count; e++) shifted[e] = combine(L, in[e], 1, NULL, 0, off + half);
        unsigned cap = bits > 3 ? bits : 3, twidth = veil_ir_bits(0, hi + off + half, &sg);
        if (!exact_floor(L, origin, input_node, shifted, count, shift, twidth, cap)) return NULL;
        if (nsteps == 0) { /* the rounding alone: k·2^l − off, no lookup */
            for (size_t e = 0; e < count; e++) out[e] = combine(L, shifted[e], 1, NULL, 0, -off);
            return out;
        }
    } else {
        for (size_t e = 0; e < count; e++) shifted[e] = off ? combine(L, in[e], 1, NULL, 0, off) : in[e];
    }
    veil_instr *ins = tlu_instr(L, origin, input_node, shifted, count, bits, shift, out);
    if (!ins) return NULL;
    for (int64_t i = 0; i < ((int64_t)1 << bits); i++)
        ins->table[i] = chain_eval(steps, nsteps, (i << shift) - off);
    /* the indices it reads; an approximate rounding may land one box off */
    int64_t klo = (lo + off + half) >> shift, khi = (hi + off + half) >> shift, top = ((int64_t)1 << bits) - 1;
    if (shift && !exact) klo = klo > 0 ? klo - 1 : 0, khi = khi < top ? khi + 1 : top;
    L->last = (node_tlu){(int64_t)(ins - L->p->instr), klo, khi};
    return out;
}

/* ---- operand access ------------------------------------------------------------------------- */
static form *operand(lower_ctx *L, int node, int64_t idx)
{
    if (L->g->nodes[node].enc) return L->forms[node][idx];
    return form_const(L, L->cv[node][idx]);
}

static int is_tlu_unary(veil_op op)
{
    return op == VEIL_OP_TABLE || op == VEIL_OP_APPLY || op == VEIL_OP_RELU || op == VEIL_OP_ABS ||
           op == VEIL_OP_CLIP || op == VEIL_OP_ROUND || op == VEIL_OP_TRUNC;
}

/* The encrypted operand through which node u could join a lookup chain, or -1. */
static int fusable_operand(const veil_graph *g, int u)
{
    const veil_node_rec *n = &g->nodes[u];
    if (!n->enc || n->users != 1 || n->is_output) return -1;
    if (is_tlu_unary(n->op) || n->op == VEIL_OP_NEG) return n->in[0];
    if (n->op == VEIL_OP_ADD || n->op == VEIL_OP_SUB || n->op == VEIL_OP_MUL) {
        int a = n->in[0], b = n->in[1];
        int e = g->nodes[a].enc ? a : b, c = e == a ? b : a;
        if (g->nodes[c].enc || g->nodes[c].size != 1 || g->nodes[e].ndim != n->ndim) return -1;
        return e;
    }
    return -1;
}

static step node_step(lower_ctx *L, int u)
{
    const veil_node_rec *n = &L->g->nodes[u];
    if (is_tlu_unary(n->op)) return (step){ST_NODE, 0, n, NULL};
    if (n->op == VEIL_OP_NEG) return (step){ST_MULK, -1, NULL, NULL};
    int enc_first = L->g->nodes[n->in[0]].enc;
    int64_t k = L->cv[n->in[enc_first ? 1 : 0]][0];
    if (n->op == VEIL_OP_MUL) return (step){ST_MULK, k, NULL, NULL};
    if (n->op == VEIL_OP_ADD) return (step){ST_ADDK, k, NULL, NULL};
    return enc_first ? (step){ST_ADDK, (int64_t)(0 - (uint64_t)k), NULL, NULL} : (step){ST_RSUBK, k, NULL, NULL};
}

/* The start of node t's lookup chain; fills steps (application order) when non-NULL. */
static int chain_start(lower_ctx *L, int t, step *steps, int *nsteps, uint8_t *fused)
{
    int path[256], np = 0, u = L->g->nodes[t].in[0], e;
    while (np < 255 && (e = fusable_operand(L->g, u)) >= 0) {
        path[np++] = u;
        if (fused) fused[u] = 1;
        u = e;
    }
    if (steps) {
        int k = 0;
        for (int i = np - 1; i >= 0; i--) steps[k++] = node_step(L, path[i]);
        steps[k++] = node_step(L, t);
        *nsteps = k;
    }
    return u;
}

/* ---- operations ------------------------------------------------------------------------------ */
/* Operand indices of a broadcasting binary node; 0 and L->st set when out of memory. The caller
 * frees *ia and *ib with veil_free. */
static int broadcast_pair(lower_ctx *L, const veil_node_rec *n, int64_t **ia, int64_t **ib)
{
    *ia = veil_malloc(sizeof(int64_t) * (size_t)n->size);
    *ib = veil_malloc(sizeof(int64_t) * (size_t)n->size);
    if (!*ia || !*ib) {
        L->st = VEIL_ERR_NOMEM;
        return 0;
    }
    veil_ir_broadcast_index(n, &L->g->nodes[n->in[0]], *ia);
    veil_ir_broadcast_index(n, &L->g->nodes[n->in[1]], *ib);
    return 1;
}

static form **elementwise_diff(lower_ctx *L, const veil_node_rec *n, int64_t **ia, int64_t **ib)
{
    form **d = alloc(L, sizeof(form *) * (size_t)n->size);
    if (!d || !broadcast_pair(L, n, ia, ib)) return NULL;
    for (int64_t e = 0; e < n->size && L->st == VEIL_OK; e++)
        d[e] = combine(L, operand(L, n->in[0], (*ia)[e]), 1, operand(L, n->in[1], (*ib)[e]), -1, 0);
    return d;
}

/* products x_e·y_e via two lookups each; xr, yr: value ranges */
static form **products(lower_ctx *L, int origin, form *const *x, form *const *y, size_t count, const int64_t xr[2],
                       const int64_t yr[2])
{
    form **s = alloc(L, sizeof(form *) * count), **d = alloc(L, sizeof(form *) * count);
    form **out = alloc(L, sizeof(form *) * count);
    if (!s || !d || !out) return NULL;
    for (size_t e = 0; e < count && L->st == VEIL_OK; e++) {
        s[e] = combine(L, x[e], 1, y[e], 1, 0);
        d[e] = combine(L, x[e], 1, y[e], -1, 0);
    }
    step sq = {ST_SQ4, 0, NULL, NULL};
    form **ts = emit_tlu(L, origin, -1, s, count, xr[0] + yr[0], xr[1] + yr[1], &sq, 1);
    form **td = emit_tlu(L, origin, -1, d, count, xr[0] - yr[1], xr[1] - yr[0], &sq, 1);
    if (!ts || !td) return NULL;
    for (size_t e = 0; e < count && L->st == VEIL_OK; e++) out[e] = combine(L, ts[e], 1, td[e], -1, 0);
    return out;
}

static form **lower_matmul(lower_ctx *L, int id)
{
    const veil_node_rec *n = &L->g->nodes[id];
    int a = n->in[0], b = n->in[1];
    const veil_node_rec *x = &L->g->nodes[a], *y = &L->g->nodes[b];
    int64_t M = x->ndim == 2 ? x->shape[0] : 1, K = y->shape[0], P = y->ndim == 2 ? y->shape[1] : 1;
    form **out = alloc(L, sizeof(form *) * (size_t)(M * P));
    if (!out) return NULL;
    if (x->enc && y->enc) {
        size_t cnt = (size_t)(M * K * P);
        form **xs = alloc(L, sizeof(form *) * cnt), **ys = alloc(L, sizeof(form *) * cnt);
        if (!xs || !ys) return NULL;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < P; j++)
                for (int64_t k = 0; k < K; k++) {
                    size_t e = (size_t)((i * P + j) * K + k);
                    xs[e] = L->forms[a][i * K + k];
                    ys[e] = L->forms[b][k * P + j];
                }
        int64_t xr[2] = {x->lo, x->hi}, yr[2] = {y->lo, y->hi};
        form **pr = products(L, id, xs, ys, cnt, xr, yr);
        if (!pr) return NULL;
        for (int64_t o = 0; o < M * P && L->st == VEIL_OK; o++) {
            for (int64_t k = 0; k < K; k++) acc_add(L, pr[o * K + k], 1);
            out[o] = acc_take(L);
        }
        return out;
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < P && L->st == VEIL_OK; j++) {
            for (int64_t k = 0; k < K; k++) {
                if (x->enc) acc_add(L, L->forms[a][i * K + k], L->cv[b][k * P + j]);
                else acc_add(L, L->forms[b][k * P + j], L->cv[a][i * K + k]);
            }
            out[i * P + j] = acc_take(L);
        }
    return out;
}

typedef struct {
    lower_ctx *L;
    form **x, **out, ***win;
    const int64_t *w, *bias;
    int64_t *m, plane, F;
} window_lower;

static void conv_tap(void *ctx, int64_t o, int64_t in, int64_t w)
{
    (void)o;
    window_lower *c = ctx;
    if (c->w[w]) acc_add(c->L, c->x[in], c->w[w]);
}

static void conv_end(void *ctx, int64_t o, int64_t taps)
{
    (void)taps;
    window_lower *c = ctx;
    if (c->bias) c->L->acc_c = veil_wadd(c->L->acc_c, c->bias[o / c->plane % c->F]);
    c->out[o] = acc_take(c->L);
}

static void pool_tap(void *ctx, int64_t o, int64_t in, int64_t w)
{
    (void)w;
    window_lower *c = ctx;
    c->win[o][c->m[o]++] = c->x[in];
}

static void pool_end(void *ctx, int64_t o, int64_t taps) { (void)ctx, (void)o, (void)taps; }

static form **lower_conv(lower_ctx *L, int id)
{
    const veil_node_rec *n = &L->g->nodes[id];
    window_lower c = {L, L->forms[n->in[0]], alloc(L, sizeof(form *) * (size_t)n->size), NULL, L->cv[n->in[1]],
                      n->nin > 2 ? L->cv[n->in[2]] : NULL, NULL, n->shape[2] * n->shape[3], n->shape[1]};
    if (!c.out) return NULL;
    veil_ir_window_cb cb = {conv_tap, conv_end, &c};
    veil_ir_windows(L->g, n, &cb);
    return L->st == VEIL_OK ? c.out : NULL;
}

/* When node x is a lookup whose outputs only this max pool reads, and its table is non-decreasing,
 * the lookup is made to return its index instead (the caller then applies the table, in `tab`,
 * after the pool): [klo, khi] is the index range. */
static int pool_of_monotone(lower_ctx *L, int x, step *tab, int64_t *klo, int64_t *khi)
{
    const veil_node_rec *X = &L->g->nodes[x];
    if (X->users != 1 || X->is_output || !is_tlu_unary(X->op) || L->own[x].instr < 0) return 0;
    veil_instr *in = &L->p->instr[L->own[x].instr];
    if (in->kind != VEIL_INSTR_TLU || in->count != (uint32_t)X->size) return 0;
    for (int64_t e = 0; e < X->size; e++) {
        const form *f = L->forms[x][e];
        if (!is_pure_slot(f) || f->slot[0] != in->out_base + (uint32_t)e) return 0;
    }
    int64_t len = (int64_t)1 << in->bits;
    for (int64_t i = 1; i < len; i++)
        if (in->table[i] < in->table[i - 1]) return 0;
    int64_t *t = alloc(L, sizeof(int64_t) * (size_t)len);
    if (!t) return 0;
    memcpy(t, in->table, sizeof(int64_t) * (size_t)len);
    for (int64_t i = 0; i < len; i++) in->table[i] = i;
    *tab = (step){ST_TAB, len, NULL, t};
    *klo = L->own[x].klo;
    *khi = L->own[x].khi;
    return 1;
}

/* Pool windows: win[o] lists the input elements of output o (padding skipped). */
static form **lower_pool(lower_ctx *L, int id)
{
    const veil_node_rec *n = &L->g->nodes[id], *X = &L->g->nodes[n->in[0]];
    int64_t cnt = n->attr[VEIL_A_KERNEL] * n->attr[VEIL_A_KERNEL + 1];
    size_t total = (size_t)n->size;
    form ***win = alloc(L, sizeof(form **) * total);
    form **cells = alloc(L, sizeof(form *) * total * (size_t)cnt);
    int64_t *m = alloc(L, sizeof(int64_t) * total);
    if (!win || !cells || !m) return NULL;
    for (size_t o = 0; o < total; o++) win[o] = cells + o * (size_t)cnt;
    window_lower c = {L, L->forms[n->in[0]], NULL, win, NULL, NULL, m, 0, 0};
    veil_ir_window_cb cb = {pool_tap, pool_end, &c};
    veil_ir_windows(L->g, n, &cb);
    if (n->op == VEIL_OP_AVGPOOL) {
        form **sums = alloc(L, sizeof(form *) * total);
        if (!sums) return NULL;
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t o = 0; o < total && L->st == VEIL_OK; o++) {
            for (int64_t j = 0; j < m[o]; j++) acc_add(L, win[o][j], 1);
            sums[o] = acc_take(L);
            int64_t l = sat_mul(m[o], X->lo), h = sat_mul(m[o], X->hi);
            if (l < lo) lo = l;
            if (h > hi) hi = h;
        }
        step div = {ST_DIV, cnt, NULL, NULL};
        return emit_tlu(L, id, -1, sums, total, lo, hi, &div, 1);
    }
    /* max: pairwise rounds, max(a, b) = b + relu(a − b) */
    form **as = alloc(L, sizeof(form *) * total * (size_t)cnt), **bs = alloc(L, sizeof(form *) * total * (size_t)cnt);
    if (!as || !bs) return NULL;
    step relu = {ST_RELU, 0, NULL, NULL}, tab = {ST_TAB, 0, NULL, NULL};
    int64_t dlo = X->lo - X->hi, dhi = X->hi - X->lo, klo = 0, khi = 0;
    if (pool_of_monotone(L, n->in[0], &tab, &klo, &khi)) dlo = klo - khi, dhi = khi - klo;
    for (;;) {
        size_t np = 0;
        for (size_t o = 0; o < total && L->st == VEIL_OK; o++)
            for (int64_t j = 0; j + 1 < m[o]; j += 2) {
                as[np] = combine(L, win[o][j], 1, win[o][j + 1], -1, 0);
                bs[np++] = win[o][j + 1];
            }
        if (np == 0 || L->st != VEIL_OK) break;
        form **r = emit_tlu(L, id, -1, as, np, dlo, dhi, &relu, 1);
        if (!r) return NULL;
        size_t q = 0;
        for (size_t o = 0; o < total; o++) {
            int64_t k = 0;
            for (int64_t j = 0; j + 1 < m[o]; j += 2, q++) win[o][k++] = combine(L, bs[q], 1, r[q], 1, 0);
            if (m[o] & 1) win[o][k++] = win[o][m[o] - 1];
            m[o] = k;
        }
    }
    form **out = alloc(L, sizeof(form *) * total);
    if (!out) return NULL;
    for (size_t o = 0; o < total; o++) out[o] = win[o][0];
    return tab.tab && L->st == VEIL_OK ? emit_tlu(L, id, -1, out, total, klo, khi, &tab, 1) : out;
}

static form **lower_node(lower_ctx *L, int id)
{
    const veil_graph *g = L->g;
    const veil_node_rec *n = &g->nodes[id];
    form **out = NULL;
    int64_t *ia = NULL, *ib = NULL;
    switch (n->op) {
    case VEIL_OP_INPUT: {
        uint32_t base = new_slots(L, (uint32_t)n->size, 0, 1);
        if (!(out = alloc(L, sizeof(form *) * (size_t)n->size))) break;
        for (int64_t e = 0; e < n->size; e++) out[e] = form_slot(L, base + (uint32_t)e);
        for (size_t i = 0; i < L->p->ninputs; i++)
            if (g->inputs[i] == id) L->p->inputs[i].base = base;
        int sg;
        unsigned bits = veil_ir_bits(n->lo, n->hi, &sg);
        if (bits > L->p->precision) L->p->precision = bits;
        break;
    }
    case VEIL_OP_ADD: case VEIL_OP_SUB: case VEIL_OP_MUL: {
        int both = g->nodes[n->in[0]].enc && g->nodes[n->in[1]].enc;
        if (!(out = alloc(L, sizeof(form *) * (size_t)n->size)) || !broadcast_pair(L, n, &ia, &ib)) break;
        if (n->op == VEIL_OP_MUL && both) {
            form **xs = alloc(L, sizeof(form *) * (size_t)n->size), **ys = alloc(L, sizeof(form *) * (size_t)n->size);
            if (!xs || !ys) break;
            for (int64_t e = 0; e < n->size; e++) xs[e] = L->forms[n->in[0]][ia[e]], ys[e] = L->forms[n->in[1]][ib[e]];
            const veil_node_rec *x = &g->nodes[n->in[0]], *y = &g->nodes[n->in[1]];
            int64_t xr[2] = {x->lo, x->hi}, yr[2] = {y->lo, y->hi};
            out = products(L, id, xs, ys, (size_t)n->size, xr, yr);
            break;
        }
        for (int64_t e = 0; e < n->size && L->st == VEIL_OK; e++) {
            form *x = operand(L, n->in[0], ia[e]), *y = operand(L, n->in[1], ib[e]);
            if (!x || !y) break;
            if (n->op == VEIL_OP_ADD) out[e] = combine(L, x, 1, y, 1, 0);
            else if (n->op == VEIL_OP_SUB) out[e] = combine(L, x, 1, y, -1, 0);
            else if (x->n == 0) out[e] = combine(L, y, x->c, NULL, 0, 0); /* clear · encrypted */
            else out[e] = combine(L, x, y->c, NULL, 0, 0);
        }
        break;
    }
    case VEIL_OP_NEG:
        if (!(out = alloc(L, sizeof(form *) * (size_t)n->size))) break;
        for (int64_t e = 0; e < n->size && L->st == VEIL_OK; e++) out[e] = combine(L, L->forms[n->in[0]][e], -1, NULL, 0, 0);
        break;
    case VEIL_OP_MATMUL: case VEIL_OP_DOT: out = lower_matmul(L, id); break;
    case VEIL_OP_SUM: {
        const veil_node_rec *s = &g->nodes[n->in[0]];
        if (!(out = alloc(L, sizeof(form *) * (size_t)n->size)) || !(ia = veil_malloc(sizeof(int64_t) * (size_t)s->size)) ||
            !(ib = veil_calloc((size_t)n->size + 1, sizeof(int64_t)))) {
            L->st = VEIL_ERR_NOMEM;
            break;
        }
        veil_ir_sum_index(s, n, ia);
        /* group the inputs of each output: counting sort */
        int64_t *order = alloc(L, sizeof(int64_t) * (size_t)s->size), *fill = alloc(L, sizeof(int64_t) * (size_t)n->size);
        if (!order || !fill) break;
        for (int64_t e = 0; e < s->size; e++) ib[ia[e] + 1]++;
        for (int64_t o = 0; o < n->size; o++) ib[o + 1] += ib[o];
        for (int64_t e = 0; e < s->size; e++) order[ib[ia[e]] + fill[ia[e]]++] = e;
        for (int64_t o = 0; o < n->size && L->st == VEIL_OK; o++) {
            for (int64_t j = ib[o]; j < ib[o + 1]; j++) acc_add(L, L->forms[n->in[0]][order[j]], 1);
            out[o] = acc_take(L);
        }
        break;
    }
    case VEIL_OP_RESHAPE: case VEIL_OP_FLATTEN: case VEIL_OP_TRANSPOSE: case VEIL_OP_SLICE: case VEIL_OP_CONCAT:
        if (!(out = alloc(L, sizeof(form *) * (size_t)n->size)) || !(ia = veil_malloc(sizeof(int64_t) * (size_t)n->size))) {
            L->st = VEIL_ERR_NOMEM;
            break;
        }
        veil_ir_gather_index(g, n, ia);
        for (int64_t e = 0; e < n->size && L->st == VEIL_OK; e++) {
            if (n->op == VEIL_OP_CONCAT) out[e] = operand(L, n->in[ia[e] >> 40], ia[e] & (((int64_t)1 << 40) - 1));
            else out[e] = L->forms[n->in[0]][ia[e]];
        }
        break;
    case VEIL_OP_CONV2D: out = lower_conv(L, id); break;
    case VEIL_OP_AVGPOOL: case VEIL_OP_MAXPOOL: out = lower_pool(L, id); break;
    case VEIL_OP_TABLE: case VEIL_OP_APPLY: case VEIL_OP_RELU: case VEIL_OP_ABS: case VEIL_OP_CLIP: case VEIL_OP_ROUND:
    case VEIL_OP_TRUNC: {
        step steps[257];
        int ns = 0;
        int s = chain_start(L, id, steps, &ns, NULL);
        const veil_node_rec *sn = &g->nodes[s];
        L->last.instr = -1;
        out = emit_tlu(L, id, s, L->forms[s], (size_t)sn->size, sn->lo, sn->hi, steps, ns);
        if (out) L->own[id] = L->last;
        break;
    }
    case VEIL_OP_LT: case VEIL_OP_LE: case VEIL_OP_GT: case VEIL_OP_GE: case VEIL_OP_EQ: case VEIL_OP_NE:
    case VEIL_OP_MIN: case VEIL_OP_MAX: {
        form **d = elementwise_diff(L, n, &ia, &ib);
        if (!d) break;
        const veil_node_rec *a = &g->nodes[n->in[0]], *b = &g->nodes[n->in[1]];
        int64_t lo = a->lo - b->hi, hi = a->hi - b->lo;
        if (n->op != VEIL_OP_MIN && n->op != VEIL_OP_MAX) {
            step cmp = {ST_CMP0, n->op, NULL, NULL};
            out = emit_tlu(L, id, -1, d, (size_t)n->size, lo, hi, &cmp, 1);
            break;
        }
        step relu = {ST_RELU, 0, NULL, NULL};
        form **r = emit_tlu(L, id, -1, d, (size_t)n->size, lo, hi, &relu, 1);
        if (!r || !(out = alloc(L, sizeof(form *) * (size_t)n->size))) break;
        for (int64_t e = 0; e < n->size && L->st == VEIL_OK; e++) {
            if (n->op == VEIL_OP_MAX) out[e] = combine(L, operand(L, n->in[1], ib[e]), 1, r[e], 1, 0);
            else out[e] = combine(L, operand(L, n->in[0], ia[e]), 1, r[e], -1, 0);
        }
        break;
    }
    default: L->st = VEIL_ERR_UNSUPPORTED; break;
    }
    veil_free(ia);
    veil_free(ib);
    if (!out && L->st == VEIL_OK) L->st = VEIL_ERR_NOMEM;
    return out;
}

void veil_program_free(veil_program *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->ninstr; i++) {
        veil_instr *in = &p->instr[i];
        veil_free(in->term_off);
        veil_free(in->term_slot);
        veil_free(in->term_w);
        veil_free(in->cst);
        veil_free(in->in_slot);
        veil_free(in->table);
    }
    for (size_t j = 0; p->outputs && j < p->noutputs; j++) veil_free(p->outputs[j].slots);
    veil_free(p->instr);
    veil_free(p->inputs);
    veil_free(p->outputs);
    veil_free(p);
}

veil_status veil_lower(const veil_graph *g, int64_t *const *cv, unsigned max_tlu_bits, veil_program **out,
                       veil_lower_issue *issues, size_t max_issues, size_t *nissues)
{
    *out = NULL;
    *nissues = 0;
    lower_ctx L = {.g = g, .cv = cv, .max_bits = max_tlu_bits, .issues = issues, .max_issues = max_issues};
    uint8_t *fused = veil_calloc(g->count, 1), *live = veil_calloc(g->count, 1);
    L.ar = veil_arena_new();
    L.p = veil_calloc(1, sizeof(veil_program));
    L.forms = veil_calloc(g->count, sizeof(form **));
    L.own = veil_malloc(sizeof(node_tlu) * (g->count ? g->count : 1));
    if (!fused || !live || !L.ar || !L.p || !L.forms || !L.own) {
        L.st = VEIL_ERR_NOMEM;
        goto done;
    }
    veil_program *p = L.p;
    for (size_t i = 0; i < g->count; i++) L.own[i].instr = -1;
    p->worst_tlu_origin = -1;
    p->ninputs = g->ninputs;
    p->noutputs = g->noutputs;
    p->inputs = veil_calloc(g->ninputs ? g->ninputs : 1, sizeof(veil_prog_input));
    p->outputs = veil_calloc(g->noutputs, sizeof(veil_prog_output));
    if (!p->inputs || !p->outputs) {
        L.st = VEIL_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < g->ninputs; i++) {
        const veil_node_rec *n = &g->nodes[g->inputs[i]];
        veil_prog_input *pi = &p->inputs[i];
        snprintf(pi->name, sizeof pi->name, "%s", n->name);
        pi->encrypted = n->enc;
        pi->size = n->size;
        pi->ndim = n->ndim;
        memcpy(pi->shape, n->shape, sizeof pi->shape);
    }
    /* chains: nodes folded into a later lookup are not emitted on their own */
    for (size_t i = 0; i < g->count; i++)
        if (g->nodes[i].enc && is_tlu_unary(g->nodes[i].op)) chain_start(&L, (int)i, NULL, NULL, fused);
    for (size_t j = 0; j < g->noutputs; j++) live[g->outputs[j]] = 1;
    for (size_t i = g->count; i-- > 0;) {
        const veil_node_rec *n = &g->nodes[i];
        if (!live[i] || fused[i] || !n->enc) continue;
        if (is_tlu_unary(n->op)) live[chain_start(&L, (int)i, NULL, NULL, NULL)] = 1;
        else
            for (int k = 0; k < n->nin; k++) live[n->in[k]] = 1;
    }
    for (size_t i = 0; i < g->count && L.st == VEIL_OK; i++) {
        const veil_node_rec *n = &g->nodes[i];
        if (n->enc && (live[i] || n->op == VEIL_OP_INPUT) && !fused[i]) L.forms[i] = lower_node(&L, (int)i);
    }
    for (size_t j = 0; j < g->noutputs && L.st == VEIL_OK; j++) {
        int id = g->outputs[j];
        const veil_node_rec *n = &g->nodes[id];
        veil_prog_output *po = &p->outputs[j];
        po->size = n->size;
        po->ndim = n->ndim;
        memcpy(po->shape, n->shape, sizeof po->shape);
        int sg;
        unsigned bits = veil_ir_bits(n->lo, n->hi, &sg);
        po->is_signed = sg;
        if (bits > p->precision) p->precision = bits;
        uint32_t *s = materialize(&L, L.forms[id], (size_t)n->size, id);
        if (!s || !(po->slots = veil_malloc(sizeof(uint32_t) * (size_t)n->size))) {
            if (L.st == VEIL_OK) L.st = VEIL_ERR_NOMEM;
            break;
        }
        memcpy(po->slots, s, sizeof(uint32_t) * (size_t)n->size);
        for (int64_t e = 0; e < n->size; e++) {
            if (L.na[s[e]] > p->out_a) p->out_a = L.na[s[e]];
            if (L.nb[s[e]] > p->out_b) p->out_b = L.nb[s[e]];
        }
    }
    if (L.st == VEIL_OK && L.nissues) L.st = VEIL_ERR_COMPILE;
    size_t mv;
    if (L.st == VEIL_OK) L.st = veil_program_mark_multi_value(p, &mv);
    if (p->tlu_precision == 0 || p->tlu_precision > p->precision) p->tlu_precision = p->precision;
    p->noise_scale = ldexp(1.0, 2 * (int)(p->precision - p->tlu_precision));
done:
    *nissues = L.nissues;
    veil_free(fused);
    veil_free(live);
    veil_free(L.forms);
    veil_free(L.own);
    veil_free(L.na);
    veil_free(L.nb);
    veil_free(L.acc);
    veil_free(L.hit);
    veil_free(L.touched);
    veil_arena_free(L.ar);
    if (L.st != VEIL_OK) {
        veil_program_free(L.p);
        return L.st;
    }
    *out = L.p;
    return VEIL_OK;
}
