/* Internal view of the op-graph, shared by src/ir and the compiler. */
#ifndef VEIL_IR_H
#define VEIL_IR_H

#include <stdint.h>

#include "veil/graph.h"

typedef enum {
    VEIL_OP_INPUT,
    VEIL_OP_CONST,
    VEIL_OP_ADD,
    VEIL_OP_SUB,
    VEIL_OP_NEG,
    VEIL_OP_MUL,
    VEIL_OP_MATMUL,
    VEIL_OP_DOT,
    VEIL_OP_SUM,
    VEIL_OP_RESHAPE,
    VEIL_OP_FLATTEN,
    VEIL_OP_TRANSPOSE,
    VEIL_OP_CONCAT,
    VEIL_OP_SLICE,
    VEIL_OP_CONV2D,
    VEIL_OP_AVGPOOL,
    VEIL_OP_MAXPOOL,
    VEIL_OP_TABLE,
    VEIL_OP_APPLY,
    VEIL_OP_RELU,
    VEIL_OP_ABS,
    VEIL_OP_CLIP,
    VEIL_OP_LT,
    VEIL_OP_LE,
    VEIL_OP_GT,
    VEIL_OP_GE,
    VEIL_OP_EQ,
    VEIL_OP_NE,
    VEIL_OP_MIN,
    VEIL_OP_MAX,
    VEIL_OP_ROUND,
    VEIL_OP_TRUNC,
    VEIL_OP_COUNT
} veil_op;

/* attr[] layout per op */
enum {
    VEIL_A_KEEPDIMS = 0,                  /* SUM */
    VEIL_A_AXIS = 0,                      /* CONCAT */
    VEIL_A_LO = 0, VEIL_A_HI = 1,         /* CLIP */
    VEIL_A_LSBS = 0,                      /* ROUND, TRUNC */
    VEIL_A_APPROX = 1,                    /* ROUND: 1 for approximate rounding */
    VEIL_A_STRIDE = 0, VEIL_A_PAD = 2, VEIL_A_DIL = 6, VEIL_A_GROUPS = 8, /* CONV2D */
    VEIL_A_KERNEL = 10                    /* pools: KERNEL, STRIDE, PAD, DIL as in CONV2D */
};

typedef struct {
    veil_op op;
    int enc;
    int nin;
    int *in;
    int ndim;
    int64_t shape[VEIL_MAX_DIMS];
    int64_t size;
    int64_t *data; /* CONST values, TABLE entries */
    size_t ndata;
    int64_t attr[12];
    int naxes;
    int axes[VEIL_MAX_DIMS]; /* SUM axes (normalized), TRANSPOSE permutation */
    veil_slice *slices;      /* SLICE, one per input axis (normalized) */
    char *name;              /* INPUT name, APPLY name */
    veil_unary_fn fn;
    void *ctx;
    int users;     /* number of operand references */
    int is_output; /* referenced by veil_graph_output */
    int has_bounds;
    int64_t lo, hi;
} veil_node_rec;

struct veil_graph {
    veil_node_rec *nodes;
    size_t count, cap;
    int *inputs;
    size_t ninputs;
    int *outputs;
    size_t noutputs, cap_out;
    veil_status status;
    char error[512];
    struct veil_arena *arena;
};

extern const char *const veil_op_names[VEIL_OP_COUNT];

/* Wrapping int64 arithmetic (two's complement, no undefined behavior on overflow). */
static inline int64_t veil_wadd(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t veil_wsub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static inline int64_t veil_wmul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }

/* Smallest uintN / intN holding [lo, hi]; *is_signed says which. */
unsigned veil_ir_bits(int64_t lo, int64_t hi, int *is_signed);
/* Element-wise univariate ops (TABLE, APPLY, RELU, ABS, CLIP, ROUND, TRUNC): *ok = 0 when x is
 * outside a table. */
int64_t veil_ir_unary(const veil_node_rec *n, int64_t x, int *ok);
/* Element-wise binary ops (ADD, SUB, MUL, comparisons, MIN, MAX), wrapping on overflow. */
int64_t veil_ir_binary(veil_op op, int64_t a, int64_t b);
/* Broadcast index: for each output flat index, the operand's flat index. */
void veil_ir_broadcast_index(const veil_node_rec *out, const veil_node_rec *opnd, int64_t *idx);
/* Source flat index of every output element of a data-movement op (RESHAPE, FLATTEN, TRANSPOSE,
 * SLICE) — or, for CONCAT, the pair (operand, index) packed as operand·2^40 + index. */
void veil_ir_gather_index(const veil_graph *g, const veil_node_rec *n, int64_t *idx);

/* The windows of a CONV2D or pool node, outputs in row-major order: tap(ctx, o, in, w) for every
 * input element inside the padded window of output o (in: flat index into the input; w: flat
 * index into the weight for CONV2D, the kernel position for pools), then end(ctx, o, taps). */
typedef struct {
    void (*tap)(void *ctx, int64_t o, int64_t in, int64_t w);
    void (*end)(void *ctx, int64_t o, int64_t taps);
    void *ctx;
} veil_ir_window_cb;
void veil_ir_windows(const veil_graph *g, const veil_node_rec *n, const veil_ir_window_cb *cb);

/* SUM: the output flat index of every input element. */
void veil_ir_sum_index(const veil_node_rec *in, const veil_node_rec *sum, int64_t *idx);

/* Deep copy (nodes, bounds, tables; apply functions are shared). */
VEIL_NODISCARD veil_status veil_ir_clone(const veil_graph *g, veil_graph **out);

/* Evaluate every clear node only (encrypted inputs may be NULL; encrypted nodes are left 0). */
VEIL_NODISCARD veil_status veil_ir_eval_clear(const veil_graph *g, const int64_t *const *inputs, int64_t ***vals,
                                              int *bad_node);

/* Evaluate every node; vals[i] has size nodes[i] (veil_ir_vals_free frees them: a constant's are its
 * own data, read only).
 * On VEIL_ERR_EVAL, *bad_node names the failing node. */
VEIL_NODISCARD veil_status veil_ir_eval_all(const veil_graph *g, const int64_t *const *inputs, int64_t ***vals,
                                            int *bad_node);
void veil_ir_vals_free(const veil_graph *g, int64_t **vals);

/* Listing with types (and ranges when show_bounds); marks put ^^^ and a message (may hold '\n')
 * under nodes. Caller frees with veil_free. */
typedef struct {
    int node;
    const char *message;
} veil_ir_mark;
char *veil_ir_format(const veil_graph *g, int show_bounds, const veil_ir_mark *marks, int nmarks);
/* "EncryptedScalar<uint3>" for node i into buf. */
void veil_ir_type_str(const veil_graph *g, int i, char *buf, size_t cap);

#endif
