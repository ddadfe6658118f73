/* Internal to the quantizer (src/ml/quant_*.c, quantize.c, post.c): the value kinds, the
 * quantization context and the helpers its files share. */
#ifndef VEIL_ML_QUANT_IMPL_H
#define VEIL_ML_QUANT_IMPL_H

#include <stdint.h>

#include "../core/strbuf.h"
#include "quant.h"
#include "tree.h"

#define MAX_TABLE_ENTRIES ((int64_t)1 << 17)
#define MAX_TABLE_CELLS ((int64_t)1 << 26)

typedef enum { QV_NONE, QV_CONST, QV_QUANT, QV_FN } qv_kind;

typedef struct {
    int node;  /* ML node index */
    int pos;   /* position of the chain's operand */
    int other; /* -1: the other operands are constants; else the qval (a QUANT value or a chain on
                * the same integer node as this chain's base) giving the other operand of a binary
                * op, as in GELU's x · Φ(x) */
    double oa, ob; /* the other's base value = oa · this chain's base value + ob (same integers,
                    * other scale and zero point) */
} fn_step;

typedef struct {
    qv_kind kind;
    int ndim;
    int64_t shape[VEIL_MAX_DIMS];
    int64_t size;
    /* CONST */
    ml_tensor c;
    int has_q; /* c lies on the grid of cq (a Quant / DequantizeLinear on a constant) */
    ml_quantizer cq;
    /* QUANT */
    int node;
    double scale, zp;
    /* FN */
    int base;
    fn_step *steps;
    int nsteps;
    /* QUANT and FN: real values per inputset sample */
    ml_tensor *cal;
} qval;

typedef struct {
    int64_t lo, step, K;
    int64_t *table;
} table_ctx;

typedef struct {
    const ml_graph *fg;
    const veil_model_options *o;
    size_t ns;
    qval *qv;
    int nqv, cap;
    int *vmap; /* ML value → qval index */
    veil_graph *g;
    ml_quantized *out;
    veil_sb rep;
    veil_sb rlog; /* one line per rounded lookup */
    int whole_range; /* 1: automatic rounding over the whole tensor's range, not per channel */
    unsigned max_bits;
    const double *inputset; /* the float inputset, ns rows of `stride` (every input's values) */
    size_t stride;
    char *err;
    size_t errlen;
    veil_status st;
} qctx;

veil_status mq_failf(qctx *Q, veil_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
veil_status mq_graph_fail(qctx *Q, const ml_node *n);
ml_quantizer mq_calibrated(double lo, double hi, int bits);
#define MQ_CLIP_MAX_VALUES ((size_t)1 << 21) /* a percentile reads at most this many values, evenly strided */
void mq_quantiles(double *v, size_t n, double p, double *lo, double *hi);
ml_quantizer mq_weight_quantizer(const ml_tensor *w, int bits);
unsigned mq_bits_of(int64_t lo, int64_t hi);
int mq_qv_new(qctx *Q, qv_kind kind);
void mq_qv_set_shape(qval *v, int ndim, const int64_t *shape);
ml_tensor *mq_cal_alloc(qctx *Q, qval *v);
void mq_qv_free(qctx *Q, qval *v);
int mq_quant_value(qctx *Q, int node, double scale, double zp);
void mq_quant_range(qctx *Q, const qval *v, int64_t *lo, int64_t *hi);
int mq_centered(qctx *Q, const qval *v);
void mq_report_value(qctx *Q, const ml_node *n, const char *what, int64_t lo, int64_t hi);
const ml_tensor *mq_const_of(qctx *Q, int value);
veil_status mq_run_step(qctx *Q, const fn_step *s, const ml_tensor *x, const ml_tensor *base, ml_tensor *y);
veil_status mq_chain_eval(qctx *Q, const fn_step *steps, int nsteps, const ml_tensor *x, ml_tensor *y);
int mq_chain_uniform(qctx *Q, const qval *v);
int64_t mq_table_fn(int64_t x, void *ctx);
table_ctx *mq_new_table(qctx *Q, int64_t lo, int64_t step, int64_t K, const int64_t *src);
int mq_rounded(qctx *Q, int node, unsigned l);
int mq_materialize(qctx *Q, int qi, const ml_quantizer *forced, int bits, const ml_node *at);
int mq_as_quant(qctx *Q, int qi, const ml_node *at);
veil_status mq_calibrate_node(qctx *Q, const ml_node *n, int pos, const qval *src, const ml_tensor *const *consts,
                              qval *dst);
int mq_do_gemm_like(qctx *Q, const ml_node *n);
int mq_do_conv(qctx *Q, const ml_node *n);
int mq_do_pool(qctx *Q, const ml_node *n);
int mq_do_pad(qctx *Q, const ml_node *n);
int mq_do_shape(qctx *Q, const ml_node *n, int qi);
int mq_do_concat(qctx *Q, const ml_node *n);
int mq_fn_append(qctx *Q, int qi, const ml_node *n, int pos);
int mq_binary_dyn(qctx *Q, const ml_node *n);
int mq_tree_bits(int n);
int mq_do_trees(qctx *Q, const ml_node *n, int ii);
size_t mq_tree_grid(const ml_trees *tr, int64_t f, double *xs, size_t n, double M, double *lo, double *scale, size_t *even);

#endif
