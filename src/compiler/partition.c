/* Precision partitions: one parameter set per lookup width, chosen jointly.
 *
 * Every lookup reading `bits` bits belongs to class `bits`; each class gets its own parameter set
 * (n, k, N, decompositions). The sets share one pair of secret keys: every class's small key is a
 * prefix of one small key, and every class's GLWE key, read as an LWE key, is a prefix of one big
 * key (the "shared randomness" keys of Bergerat, Chillotti, Ligier, Orfila, Roux-Langlois, Tap,
 * "New Secret Keys for Enhanced Performance in (T)FHE", ePrint 2023/979). So a value made under a
 * shorter big key is also a ciphertext under any longer one (zero mask words above its
 * dimension): linear combinations mix classes for free, and a lookup of class j key-switches its
 * input from whatever prefix it lies under with the rows of one key-switching key, of source
 * dimension the widest key its inputs read. Each set keeps the noise the 128-bit curve requires
 * for its own dimensions.
 *
 * The noise analysis runs on the lowered program: every slot carries Σ_i a_i·σ²_pbs(i) + b·σ²_fresh
 * (one a per class) and the set of keys it is made under; each lookup input and each output gives
 * one constraint, and constraints dominated by another of their class are dropped.
 *
 * The search starts from the single-precision choice for every class (feasible by construction,
 * see veil_part_optimize) and replaces one class's set at a time by the cheapest that keeps every
 * constraint of the circuit, the others fixed: exhaustive over (k, N, n, ℓ_pbs, ℓ_ks) as in
 * optimize.c, with the dependence on the candidate reduced to one bound on its PBS variance (the
 * other classes' lookups and the outputs) and one on its key-switch variance per unit of input
 * dimension (its own lookups). The total cost only decreases, so the result never costs more than
 * the single-precision circuit. */
#include "partition.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "veil/compiler.h"

enum { REQ_CAP = 64, N_MIN = 256, N_MAX = 2048, K_MAX = 6, LOGN_MIN = 8, LOGN_MAX = 16, PBS_L_MAX = 8,
       KS_L_MAX = 16, LOG_Q = 63, ROUNDS = 6 };

/* ---- analysis --------------------------------------------------------------------------------- */
static int dominates(const veil_noise_req *x, const veil_noise_req *y, size_t m)
{
    if ((x->mask | y->mask) != x->mask || x->b < y->b) return 0;
    for (size_t i = 0; i < m; i++)
        if (x->a[i] < y->a[i]) return 0;
    return 1;
}

static veil_status add_req(veil_noise_req **list, size_t *count, const veil_noise_req *r, size_t m)
{
    for (size_t e = 0; e < *count; e++)
        if (dominates(&(*list)[e], r, m)) return VEIL_OK;
    for (size_t e = 0; e < *count;)
        if (dominates(r, &(*list)[e], m)) (*list)[e] = (*list)[--*count];
        else e++;
    if (*count == REQ_CAP) { /* full: fold into the first of the same keys (a weaker constraint) */
        size_t t = 0;
        for (size_t e = 0; e < *count; e++)
            if ((*list)[e].mask == r->mask) {
                t = e;
                break;
            }
        veil_noise_req *x = &(*list)[t];
        x->mask |= r->mask;
        if (r->b > x->b) x->b = r->b;
        for (size_t i = 0; i < m; i++)
            if (r->a[i] > x->a[i]) x->a[i] = r->a[i];
        return VEIL_OK;
    }
    if (!*list && !(*list = veil_malloc(sizeof(veil_noise_req) * REQ_CAP))) return VEIL_ERR_NOMEM;
    (*list)[(*count)++] = *r;
    return VEIL_OK;
}

size_t veil_part_class_of(const veil_part_problem *pr, unsigned bits)
{
    for (size_t j = 0; j < pr->m; j++)
        if (pr->cls[j].bits == bits) return j;
    return 0;
}

void veil_part_problem_free(veil_part_problem *pr)
{
    if (!pr) return;
    for (size_t j = 0; j < pr->m; j++) veil_free(pr->cls[j].req);
    veil_free(pr->out);
    memset(pr, 0, sizeof *pr);
}

veil_status veil_part_analyze(const veil_program *p, double p_error, veil_part_problem *pr)
{
    memset(pr, 0, sizeof *pr);
    pr->precision = p->precision;
    pr->p_error = p_error;
    pr->n_terms = p->n_terms;
    /* classes: the distinct widths, ascending */
    uint32_t widths = 0;
    for (size_t k = 0; k < p->ninstr; k++)
        if (p->instr[k].kind == VEIL_INSTR_TLU) widths |= 1u << p->instr[k].bits;
    for (unsigned b = 0; b < 32; b++)
        if (widths >> b & 1) {
            if (pr->m == VEIL_MAX_PARTS) return VEIL_ERR_UNSUPPORTED;
            pr->cls[pr->m].bits = b;
            pr->cls[pr->m].worst_origin = -1;
            pr->m++;
        }
    const size_t m = pr->m, ns = p->nslots ? p->nslots : 1;
    double *A = veil_calloc(ns * (m ? m : 1), sizeof(double)), *B = veil_calloc(ns, sizeof(double));
    uint32_t *M = veil_calloc(ns, sizeof(uint32_t)), *mvseen = veil_calloc(ns, sizeof(uint32_t));
    double *worst = veil_calloc(m ? m : 1, sizeof(double));
    veil_status st = A && B && M && worst && mvseen ? VEIL_OK : VEIL_ERR_NOMEM;
    for (size_t i = 0; i < p->ninputs && st == VEIL_OK; i++)
        if (p->inputs[i].encrypted)
            for (int64_t e = 0; e < p->inputs[i].size; e++) {
                B[p->inputs[i].base + e] = 1;
                M[p->inputs[i].base + e] = 1u << VEIL_PART_FRESH;
            }
    for (size_t k = 0; k < p->ninstr && st == VEIL_OK; k++) {
        const veil_instr *I = &p->instr[k];
        if (I->kind == VEIL_INSTR_LINEAR) {
            for (uint32_t o = 0; o < I->count; o++) {
                size_t s = (size_t)I->out_base + o;
                for (uint64_t t = I->term_off[o]; t < I->term_off[o + 1]; t++) {
                    size_t src = I->term_slot[t];
                    double w2 = (double)I->term_w[t] * (double)I->term_w[t];
                    for (size_t c = 0; c < m; c++) A[s * m + c] += w2 * A[src * m + c];
                    B[s] += w2 * B[src];
                    M[s] |= M[src];
                }
                /* a constant: under the whole key, as the runtime makes it (veil_circuit_slot_dims) */
                if (!M[s]) M[s] = 1u << VEIL_PART_FRESH;
            }
            continue;
        }
        size_t j = veil_part_class_of(pr, I->bits);
        veil_part_class *C = &pr->cls[j];
        const double room = ldexp(1.0, -2 * (int)I->shift);
        for (uint32_t o = 0; o < I->count && st == VEIL_OK; o++) {
            size_t src = I->in_slot[o];
            veil_noise_req r = {.b = B[src] * room, .mask = M[src]};
            double sum = r.b;
            for (size_t c = 0; c < m; c++) sum += (r.a[c] = A[src * m + c] * room);
            if (C->worst_origin < 0 || sum > worst[j]) {
                worst[j] = sum;
                C->worst_origin = I->origin;
                C->worst_exact = I->exact_low;
            }
            st = add_req(&C->req, &C->nreq, &r, m);
            size_t out = (size_t)I->out_base + o;
            A[out * m + j] = veil_instr_out_noise(I);
            M[out] = 1u << j;
        }
        C->n_tlu += I->count;
        for (uint32_t o = 0; o < I->count; o++) C->n_br += veil_mv_first(I, o, mvseen);
    }
    for (size_t q = 0; q < p->noutputs && st == VEIL_OK; q++)
        for (int64_t e = 0; e < p->outputs[q].size && st == VEIL_OK; e++) {
            size_t s = p->outputs[q].slots[e];
            veil_noise_req r = {.b = B[s], .mask = M[s]};
            for (size_t c = 0; c < m; c++) r.a[c] = A[s * m + c];
            st = add_req(&pr->out, &pr->nout, &r, m);
        }
    veil_free(A);
    veil_free(B);
    veil_free(M);
    veil_free(mvseen);
    veil_free(worst);
    if (st != VEIL_OK) veil_part_problem_free(pr);
    return st;
}

/* ---- evaluation of an assignment ------------------------------------------------------------ */
static uint32_t dim_of(const veil_params *p) { return veil_params_big_lwe_dim(p); }

static uint32_t max_dim(const veil_part_problem *pr, const veil_params *sets)
{
    uint32_t d = 0;
    for (size_t i = 0; i < pr->m; i++)
        if (dim_of(&sets[i]) > d) d = dim_of(&sets[i]);
    return d;
}

static uint32_t mask_dim(uint32_t mask, const uint32_t *dims, size_t m, uint32_t dmax)
{
    uint32_t d = mask >> VEIL_PART_FRESH & 1 ? dmax : 0;
    for (size_t i = 0; i < m; i++)
        if ((mask >> i & 1) && dims[i] > d) d = dims[i];
    return d ? d : dmax;
}

uint32_t veil_part_ks_dim(const veil_part_problem *pr, const veil_params *sets, size_t j)
{
    uint32_t dims[VEIL_MAX_PARTS], dmax = max_dim(pr, sets), d = 0;
    for (size_t i = 0; i < pr->m; i++) dims[i] = dim_of(&sets[i]);
    for (size_t r = 0; r < pr->cls[j].nreq; r++) {
        uint32_t x = mask_dim(pr->cls[j].req[r].mask, dims, pr->m, dmax);
        if (x > d) d = x;
    }
    return d ? d : dims[j];
}

double veil_part_cost(const veil_part_problem *pr, const veil_params *sets)
{
    double c = 0, dmax = max_dim(pr, sets);
    for (size_t j = 0; j < pr->m; j++) {
        const veil_params *P = &sets[j];
        double N = veil_params_N(P);
        c += (double)pr->cls[j].n_br * (veil_cost_pbs(P->n, P->k, N, P->pbs_levels) +
                                         veil_cost_ks(P->n, veil_part_ks_dim(pr, sets, j), P->ks_levels));
    }
    return c + (double)pr->n_terms * (dmax + 1) * 2;
}

static double smax2(unsigned bits, double p_error)
{
    double s = veil_sigma_max(bits, p_error);
    return s * s;
}

/* the worst lhs / bound ratio of class j's constraints (≤ 1: all hold) */
static double class_margin(const veil_part_problem *pr, const veil_params *sets, size_t j, double *worst_var)
{
    uint32_t dims[VEIL_MAX_PARTS], dmax = max_dim(pr, sets);
    double vp[VEIL_MAX_PARTS];
    for (size_t i = 0; i < pr->m; i++) dims[i] = dim_of(&sets[i]), vp[i] = veil_var_pbs(&sets[i]);
    veil_noise fresh = veil_curve_noise(dmax);
    double vf = veil_noise_variance(&fresh), worst = 0, wv = 0;
    const veil_part_class *C = &pr->cls[j];
    const double sc = ldexp(1.0, 2 * ((int)pr->precision - (int)C->bits)), bound = smax2(C->bits, pr->p_error);
    for (size_t r = 0; r < C->nreq; r++) {
        const veil_noise_req *q = &C->req[r];
        double v = q->b * vf;
        for (size_t i = 0; i < pr->m; i++) v += q->a[i] * vp[i];
        double lhs = v * sc + veil_var_keyswitch_dim(&sets[j], mask_dim(q->mask, dims, pr->m, dmax)) +
                     veil_var_modswitch(&sets[j]);
        if (lhs / bound > worst) worst = lhs / bound, wv = lhs;
    }
    if (worst_var) *worst_var = wv;
    return worst;
}

int veil_part_feasible(const veil_part_problem *pr, const veil_params *sets)
{
    for (size_t j = 0; j < pr->m; j++) {
        if (veil_params_check(&sets[j]) != VEIL_OK || pr->cls[j].bits + 1 > sets[j].log2_N) return 0;
        if (class_margin(pr, sets, j, NULL) > 1) return 0;
    }
    uint32_t dmax = max_dim(pr, sets);
    veil_noise fresh = veil_curve_noise(dmax);
    double vf = veil_noise_variance(&fresh), bound = smax2(pr->precision, pr->p_error);
    for (size_t r = 0; r < pr->nout; r++) {
        double v = pr->out[r].b * vf;
        for (size_t i = 0; i < pr->m; i++) v += pr->out[r].a[i] * veil_var_pbs(&sets[i]);
        if (v > bound) return 0;
    }
    return 1;
}

double veil_part_p_error(const veil_part_problem *pr, const veil_params *sets, size_t j)
{
    double var;
    class_margin(pr, sets, j, &var);
    return var > 0 ? erfc(exp2(-(double)pr->cls[j].bits - 2.0) / sqrt(2.0 * var)) : 0;
}

/* ---- the search for one class ------------------------------------------------------------------ */
typedef struct {
    const veil_part_problem *pr;
    veil_params *sets;
    const double *lwe_var; /* curve variance per small dimension */
    /* key-switch variance per unit of input dimension = K1·σ²_lwe + K2, per (levels, base log) */
    double K1[KS_L_MAX + 1][LOG_Q + 1], K2[KS_L_MAX + 1][LOG_Q + 1];
} search_ctx;

/* Cheapest set for class j with the other classes fixed; sets[j] is replaced when a cheaper
 * feasible one exists. Returns 1 when it was. */
static int search_class(search_ctx *S, size_t j)
{
    const veil_part_problem *pr = S->pr;
    const size_t m = pr->m;
    veil_params *sets = S->sets;
    double best = veil_part_cost(pr, sets);
    veil_params bestp = sets[j];
    int improved = 0;
    const veil_part_class *C = &pr->cls[j];
    const double scj = ldexp(1.0, 2 * ((int)pr->precision - (int)C->bits)), boundj = smax2(C->bits, pr->p_error);
    const double bound_out = smax2(pr->precision, pr->p_error);
    double vp[VEIL_MAX_PARTS];
    for (size_t i = 0; i < m; i++) vp[i] = veil_var_pbs(&sets[i]);
    for (uint32_t logN = LOGN_MIN; logN <= LOGN_MAX; logN++) {
        if (C->bits + 1 > logN) continue;
        for (uint32_t k = 1; k <= K_MAX; k++) {
            const uint32_t kN = k << logN;
            if (kN > (1u << LOGN_MAX)) continue;
            veil_params q = sets[j];
            q.k = k;
            q.log2_N = logN;
            q.glwe_noise = veil_curve_noise(kN);
            q.ks_in_dim = 0;
            uint32_t dims[VEIL_MAX_PARTS], dmax = 0;
            for (size_t i = 0; i < m; i++) {
                dims[i] = i == j ? kN : dim_of(&sets[i]);
                if (dims[i] > dmax) dmax = dims[i];
            }
            veil_noise fresh = veil_curve_noise(dmax);
            const double vf = veil_noise_variance(&fresh);
            /* the other classes and the outputs bound this class's PBS variance */
            double vp_max = INFINITY, other_cost = (double)pr->n_terms * (dmax + 1) * 2;
            int ok = 1;
            for (size_t i = 0; i < m && ok; i++) {
                if (i == j) continue;
                const veil_part_class *Ci = &pr->cls[i];
                const double sc = ldexp(1.0, 2 * ((int)pr->precision - (int)Ci->bits)), bound = smax2(Ci->bits, pr->p_error);
                uint32_t ksd = 0;
                for (size_t r = 0; r < Ci->nreq && ok; r++) {
                    const veil_noise_req *x = &Ci->req[r];
                    uint32_t d = mask_dim(x->mask, dims, m, dmax);
                    if (d > ksd) ksd = d;
                    double v0 = x->b * vf;
                    for (size_t c = 0; c < m; c++)
                        if (c != j) v0 += x->a[c] * vp[c];
                    double slack = bound - veil_var_keyswitch_dim(&sets[i], d) - veil_var_modswitch(&sets[i]) - v0 * sc;
                    if (slack < 0) ok = 0;
                    else if (x->a[j] > 0 && slack / (x->a[j] * sc) < vp_max) vp_max = slack / (x->a[j] * sc);
                }
                if (!ksd) ksd = dims[i];
                other_cost += (double)Ci->n_br * (veil_cost_pbs(sets[i].n, sets[i].k, veil_params_N(&sets[i]),
                                                                 sets[i].pbs_levels) +
                                                   veil_cost_ks(sets[i].n, ksd, sets[i].ks_levels));
            }
            for (size_t r = 0; r < pr->nout && ok; r++) {
                const veil_noise_req *x = &pr->out[r];
                double v0 = x->b * vf;
                for (size_t c = 0; c < m; c++)
                    if (c != j) v0 += x->a[c] * vp[c];
                double slack = bound_out - v0;
                if (slack < 0) ok = 0;
                else if (x->a[j] > 0 && slack / x->a[j] < vp_max) vp_max = slack / x->a[j];
            }
            if (!ok) continue;
            /* this class's own constraints: fixed part and input dimension of each */
            double v0j[REQ_CAP], dj[REQ_CAP], aj[REQ_CAP];
            uint32_t ksdj = 0;
            for (size_t r = 0; r < C->nreq; r++) {
                const veil_noise_req *x = &C->req[r];
                double v0 = x->b * vf;
                for (size_t c = 0; c < m; c++)
                    if (c != j) v0 += x->a[c] * vp[c];
                v0j[r] = v0 * scj;
                aj[r] = x->a[j] * scj;
                uint32_t d = mask_dim(x->mask, dims, m, dmax);
                dj[r] = d;
                if (d > ksdj) ksdj = d;
            }
            if (!ksdj) ksdj = kN;
            /* PBS variance per unit of n, best base per level count */
            double gmin[PBS_L_MAX + 1];
            uint32_t gbase[PBS_L_MAX + 1];
            veil_params t = q;
            t.n = 1;
            for (uint32_t l = 1; l <= PBS_L_MAX; l++) {
                gmin[l] = INFINITY;
                gbase[l] = 0;
                for (uint32_t b = 1; b * l <= LOG_Q; b++) {
                    t.pbs_levels = l;
                    t.pbs_base_log = b;
                    double g = veil_var_pbs(&t);
                    if (g < gmin[l]) gmin[l] = g, gbase[l] = b;
                }
            }
            const double N = (double)(1u << logN);
            for (uint32_t n = N_MIN; n <= N_MAX; n++) {
                double lower = other_cost + (double)C->n_br * (veil_cost_pbs(n, k, N, 1) + veil_cost_ks(n, ksdj, 1));
                if (lower >= best) break; /* cost grows with n */
                const double s2 = S->lwe_var[n], vms = (n * 0.5 + 1.0) / (48.0 * N * N);
                /* key-switch variance per unit of input dimension, best base per level count */
                double ksmin[KS_L_MAX + 1];
                uint32_t ksbase[KS_L_MAX + 1];
                for (uint32_t l = 1; l <= KS_L_MAX; l++) {
                    ksmin[l] = INFINITY;
                    ksbase[l] = 0;
                    for (uint32_t b = 1; b * l <= LOG_Q; b++) {
                        double v = S->K1[l][b] * s2 + S->K2[l][b];
                        if (v < ksmin[l]) ksmin[l] = v, ksbase[l] = b;
                    }
                }
                for (uint32_t lp = 1; lp <= PBS_L_MAX; lp++) {
                    const double v = n * gmin[lp];
                    if (v > vp_max) continue;
                    double ks_room = INFINITY; /* largest key-switch variance per unit dimension */
                    for (size_t r = 0; r < C->nreq; r++) {
                        double room = (boundj - vms - v0j[r] - aj[r] * v) / dj[r];
                        if (room < ks_room) ks_room = room;
                    }
                    if (ks_room <= 0) continue;
                    for (uint32_t lk = 1; lk <= KS_L_MAX; lk++) {
                        if (ksmin[lk] > ks_room) continue;
                        double c = other_cost + (double)C->n_br * (veil_cost_pbs(n, k, N, lp) + veil_cost_ks(n, ksdj, lk));
                        if (c < best * (1 - 1e-12)) {
                            best = c;
                            bestp = q;
                            bestp.n = n;
                            bestp.lwe_noise = veil_curve_noise(n);
                            bestp.pbs_levels = lp;
                            bestp.pbs_base_log = gbase[lp];
                            bestp.ks_levels = lk;
                            bestp.ks_base_log = ksbase[lk];
                            improved = 1;
                        }
                        break; /* more key-switch levels only cost more */
                    }
                }
            }
        }
    }
    if (improved) {
        veil_params keep = sets[j];
        sets[j] = bestp;
        if (!veil_part_feasible(pr, sets)) { /* the reductions above are exact; never trust them blindly */
            sets[j] = keep;
            return 0;
        }
    }
    return improved;
}

veil_status veil_part_optimize(const veil_part_problem *pr, const veil_params *start, veil_params *sets)
{
    for (size_t j = 0; j < pr->m; j++) {
        sets[j] = *start;
        sets[j].ks_in_dim = 0;
        snprintf(sets[j].name, sizeof sets[j].name, "auto-p%u", pr->cls[j].bits);
    }
    if (pr->m < 2 || !veil_part_feasible(pr, sets)) return VEIL_OK;
    double *lwe_var = veil_malloc(sizeof(double) * (N_MAX + 1));
    if (!lwe_var) return VEIL_ERR_NOMEM;
    for (uint32_t n = N_MIN; n <= N_MAX; n++) {
        veil_noise nz = veil_curve_noise(n);
        lwe_var[n] = veil_noise_variance(&nz);
    }
    search_ctx S; /* 17 KB */
    memset(&S, 0, sizeof S);
    S.pr = pr;
    S.sets = sets;
    S.lwe_var = lwe_var;
    for (uint32_t l = 1; l <= KS_L_MAX; l++)
        for (uint32_t b = 1; b * l <= LOG_Q; b++) { /* as veil_var_keyswitch_dim with in_dim 1 */
            S.K1[l][b] = l * (exp2(2.0 * b) + 2) / 12.0;
            S.K2[l][b] = 0.5 * exp2(-2.0 * b * l) / 12.0;
        }
    /* the classes with the most lookups first */
    size_t order[VEIL_MAX_PARTS];
    for (size_t j = 0; j < pr->m; j++) order[j] = j;
    for (size_t a = 0; a < pr->m; a++)
        for (size_t b = a + 1; b < pr->m; b++)
            if (pr->cls[order[b]].n_tlu > pr->cls[order[a]].n_tlu) {
                size_t t = order[a];
                order[a] = order[b];
                order[b] = t;
            }
    for (int round = 0; round < ROUNDS; round++) {
        int any = 0;
        for (size_t a = 0; a < pr->m; a++) any |= search_class(&S, order[a]);
        if (!any) break;
    }
    veil_free(lwe_var);
    return VEIL_OK;
}
