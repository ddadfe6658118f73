/* veil/graph.h — build an integer op-graph ("tracing" in C).
 *
 * Builder calls record nodes; nothing is computed until compile (veil/compiler.h). Every builder
 * returns a node id (>= 0) or -1 on error; errors are sticky: a call given a -1 operand returns -1,
 * and the first error stays in veil_graph_status() / veil_graph_last_error(). So a program builds
 * its whole graph and checks once:
 *
 *     veil_graph *g;  if (veil_graph_new(&g) != VEIL_OK) return 1;
 *     int b = veil_graph_scalar(g, 2);
 *     int w = veil_graph_constant(g, 1, (int64_t[]){1}, (int64_t[]){2});
 *     int x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 1, (int64_t[]){1});
 *     int y = veil_graph_add(g, veil_graph_matmul(g, w, x), b);       // w @ x + b
 *     if (veil_graph_output(g, y) != VEIL_OK) fprintf(stderr, "%s\n", veil_graph_last_error(g));
 *
 * Values are signed 64-bit integers. Element-wise operations broadcast like NumPy. A node is
 * encrypted when any operand is; operations on clear operands only stay clear.
 */
#ifndef VEIL_GRAPH_H
#define VEIL_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "veil/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VEIL_MAX_DIMS 8

typedef struct veil_graph veil_graph;
typedef enum { VEIL_CLEAR = 0, VEIL_ENCRYPTED = 1 } veil_visibility;

VEIL_NODISCARD veil_status veil_graph_new(veil_graph **out);
void veil_graph_free(veil_graph *g); /* accepts NULL */
/* VEIL_OK, or the status of the first failed builder call. */
veil_status veil_graph_status(const veil_graph *g);
/* The first error's message ("" when none); borrowed, valid until veil_graph_free. */
const char *veil_graph_last_error(const veil_graph *g);
/* Human-readable listing of the graph (no types before compile). Caller frees with veil_free. */
char *veil_graph_format(const veil_graph *g);

/* ---- values --------------------------------------------------------------------------------- */
/* An input of the compiled function, in declaration order. ndim = 0 declares a scalar. The name
 * is copied. */
int veil_graph_input(veil_graph *g, const char *name, veil_visibility vis, int ndim, const int64_t *shape);
/* A clear constant tensor (values copied, row-major). ndim = 0: scalar. */
int veil_graph_constant(veil_graph *g, int ndim, const int64_t *shape, const int64_t *values);
int veil_graph_scalar(veil_graph *g, int64_t value);
/* Mark a node as an output of the function (in call order). */
VEIL_NODISCARD veil_status veil_graph_output(veil_graph *g, int node);

/* ---- leveled (linear) operations -------------------------------------------------------------- */
int veil_graph_add(veil_graph *g, int a, int b);
int veil_graph_sub(veil_graph *g, int a, int b);
int veil_graph_negate(veil_graph *g, int a);
/* Element-wise product. One operand clear: linear. Both encrypted: two table lookups per element,
 * xy = ⌊(x+y)²/4⌋ − ⌊(x−y)²/4⌋. */
int veil_graph_multiply(veil_graph *g, int a, int b);
/* NumPy matmul for 1-D and 2-D operands; dot for 1-D. Encrypted × encrypted uses the product above. */
int veil_graph_matmul(veil_graph *g, int a, int b);
int veil_graph_dot(veil_graph *g, int a, int b);
/* Sum over `naxes` axes (naxes = 0: all); negative axes count from the end. */
int veil_graph_sum(veil_graph *g, int x, int naxes, const int *axes, int keepdims);
/* New shape with the same size; one entry may be -1. */
int veil_graph_reshape(veil_graph *g, int x, int ndim, const int64_t *shape);
int veil_graph_flatten(veil_graph *g, int x);
/* perm = NULL reverses the axes (NumPy's default). */
int veil_graph_transpose(veil_graph *g, int x, const int *perm);
int veil_graph_concatenate(veil_graph *g, int n, const int *xs, int axis);

/* Slicing with Python semantics, one entry per leading axis (missing axes are taken whole).
 * An entry with index = 1 takes element `start` and drops the axis; otherwise start:stop:step,
 * where VEIL_SLICE_END as stop (or start, for negative steps) means "to the end". */
#define VEIL_SLICE_END INT64_MAX
typedef struct {
    int64_t start, stop, step;
    int index;
} veil_slice;
#define VEIL_SLICE_ALL ((veil_slice){0, VEIL_SLICE_END, 1, 0})
#define VEIL_SLICE_AT(i) ((veil_slice){(i), 0, 1, 1})
int veil_graph_slice(veil_graph *g, int x, int n, const veil_slice *s);

/* 2-D convolution, x of shape (N, C, H, W), w a clear constant of shape (F, C/groups, KH, KW),
 * bias (-1: none) a clear constant of shape (F,). pads = {top, left, bottom, right}. */
typedef struct {
    int64_t strides[2], pads[4], dilations[2], groups;
} veil_conv2d_opts;
#define VEIL_CONV2D_DEFAULT ((veil_conv2d_opts){{1, 1}, {0, 0, 0, 0}, {1, 1}, 1})
int veil_graph_conv2d(veil_graph *g, int x, int w, int bias, const veil_conv2d_opts *o);

/* Pooling over (N, C, H, W). Padding counts in the average (count_include_pad): the average is
 * ⌊sum / (KH·KW)⌋, one table lookup after the sum; the maximum ignores padding. */
typedef struct {
    int64_t kernel[2], strides[2], pads[4], dilations[2];
} veil_pool2d_opts;
int veil_graph_avg_pool2d(veil_graph *g, int x, const veil_pool2d_opts *o);
int veil_graph_max_pool2d(veil_graph *g, int x, const veil_pool2d_opts *o);

/* ---- table lookups --------------------------------------------------------------------------- */
/* out = table[x] (negative x index from the end, as in Python). The table must cover every value
 * of x's type: 2^bits entries (copied). */
int veil_graph_table(veil_graph *g, int x, size_t n, const int64_t *table);
/* out = fn(x, ctx) element-wise; fn is called by veil over x's value range at compile time and by
 * clear evaluation. fn and ctx are borrowed until the circuit is compiled (for the circuit's life
 * when clear inputs reach encrypted operations, see veil_compile); `name` is copied. */
typedef int64_t (*veil_unary_fn)(int64_t x, void *ctx);
int veil_graph_apply(veil_graph *g, int x, veil_unary_fn fn, void *ctx, const char *name);
int veil_graph_relu(veil_graph *g, int x);
int veil_graph_abs(veil_graph *g, int x);
int veil_graph_clip(veil_graph *g, int x, int64_t lo, int64_t hi);
/* Comparisons give 0/1; one lookup on a − b. */
int veil_graph_less(veil_graph *g, int a, int b);
int veil_graph_less_equal(veil_graph *g, int a, int b);
int veil_graph_greater(veil_graph *g, int a, int b);
int veil_graph_greater_equal(veil_graph *g, int a, int b);
int veil_graph_equal(veil_graph *g, int a, int b);
int veil_graph_not_equal(veil_graph *g, int a, int b);
int veil_graph_minimum(veil_graph *g, int a, int b);
int veil_graph_maximum(veil_graph *g, int a, int b);
/* round(x / 2^lsbs)·2^lsbs (ties up) and ⌊x / 2^lsbs⌋·2^lsbs: the low bits cleared. Exact in
 * FHE: the low bits are extracted by lookups no wider than the kept bits (two per chunk), so a
 * lookup that follows reads only the kept bits; the noise must stay below x's lowest bit. */
int veil_graph_round_bit_pattern(veil_graph *g, int x, unsigned lsbs_to_remove);
int veil_graph_truncate_bit_pattern(veil_graph *g, int x, unsigned lsbs_to_remove);
/* Approximate rounding (Concrete's Exactness.APPROXIMATE): when it feeds a table lookup, the
 * bootstrapping reads only the kept high bits, so the lookup costs the precision of the rounded
 * value, not of x. Clear evaluation rounds exactly; in FHE a value whose low bits lie within the
 * noise of the midpoint may round either way (off by one in the rounded value). */
int veil_graph_round_bit_pattern_approx(veil_graph *g, int x, unsigned lsbs_to_remove);

/* ---- inspection ------------------------------------------------------------------------------ */
size_t veil_graph_node_count(const veil_graph *g);
size_t veil_graph_input_count(const veil_graph *g);
int veil_graph_input_node(const veil_graph *g, size_t i); /* node id of input i, -1 out of range */
size_t veil_graph_output_count(const veil_graph *g);
int veil_graph_output_node(const veil_graph *g, size_t j);
/* Shape of a node; returns ndim (0 for scalars), -1 for a bad id. */
int veil_graph_shape(const veil_graph *g, int node, int64_t shape[VEIL_MAX_DIMS]);
int veil_graph_is_encrypted(const veil_graph *g, int node);

/* Clear evaluation of the whole graph: inputs[i] holds input i (declaration order, row-major);
 * outputs[j] receives output j (caller-allocated with the output's size). */
VEIL_NODISCARD veil_status veil_graph_eval(const veil_graph *g, const int64_t *const *inputs,
                                           int64_t *const *outputs);

#ifdef __cplusplus
}
#endif
#endif
