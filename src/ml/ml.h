/* The imported float model: values (tensors of doubles) and ONNX nodes in topological order,
 * with their float kernels. Internal to libveil (src/ml/). */
#ifndef VEIL_ML_ML_H
#define VEIL_ML_ML_H

#include <stddef.h>
#include <stdint.h>

#include "veil/graph.h"

typedef struct {
    int ndim;
    int64_t shape[VEIL_MAX_DIMS];
    int64_t size;
    double *data;  /* owned (veil_malloc) */
    int elem_type; /* ONNX TensorProto data type of the source (0: float / unknown) */
} ml_tensor;

/* Every operator veil imports. Names in ml_op_names (ONNX op_type). */
typedef enum {
    ML_OP_GEMM, ML_OP_MATMUL, ML_OP_ADD, ML_OP_SUB, ML_OP_MUL, ML_OP_DIV, ML_OP_NEG, ML_OP_RELU,
    ML_OP_SIGMOID, ML_OP_TANH, ML_OP_LEAKY_RELU, ML_OP_ELU, ML_OP_SELU, ML_OP_SOFTPLUS, ML_OP_HARD_SIGMOID,
    ML_OP_HARD_SWISH, ML_OP_ERF, ML_OP_CLIP, ML_OP_ABS, ML_OP_EXP, ML_OP_LOG, ML_OP_POW, ML_OP_SQRT,
    ML_OP_CONV, ML_OP_AVERAGE_POOL, ML_OP_GLOBAL_AVERAGE_POOL, ML_OP_MAX_POOL, ML_OP_BATCH_NORM, ML_OP_PAD,
    ML_OP_FLATTEN, ML_OP_RESHAPE, ML_OP_SQUEEZE, ML_OP_UNSQUEEZE, ML_OP_TRANSPOSE, ML_OP_CONCAT,
    ML_OP_IDENTITY, ML_OP_CONSTANT, ML_OP_DROPOUT, ML_OP_QUANT, ML_OP_QUANTIZE_LINEAR,
    ML_OP_DEQUANTIZE_LINEAR, ML_OP_SOFTMAX, ML_OP_LOG_SOFTMAX, ML_OP_ARGMAX, ML_OP_SHAPE, ML_OP_GATHER,
    ML_OP_CAST,
    /* ONNX-ML (domain ai.onnx.ml, onnx_ml.c) */
    ML_OP_LINEAR_CLASSIFIER, ML_OP_LINEAR_REGRESSOR, ML_OP_SCALER, ML_OP_NORMALIZER, ML_OP_ZIPMAP,
    ML_OP_TREE_ENSEMBLE_CLASSIFIER, ML_OP_TREE_ENSEMBLE_REGRESSOR,
    /* veil's own, made at import (never read from a file): a classifier's label from its scores,
     * and an ONNX-ML post transform of scores */
    ML_OP_SCORES_LABEL, ML_OP_SCORES_TRANSFORM,
    /* a tree ensemble's raw scores (its attributes kept), computed in FHE in the GEMM form */
    ML_OP_TREE_SCORES,
    ML_OP_COUNT
} ml_op;
#define ML_OP_FIRST_ONNX_ML ML_OP_LINEAR_CLASSIFIER
#define ML_OP_FIRST_INTERNAL ML_OP_SCORES_LABEL
extern const char *const ml_op_names[ML_OP_COUNT];

typedef enum {
    ML_ATTR_INT, ML_ATTR_FLOAT, ML_ATTR_INTS, ML_ATTR_FLOATS, ML_ATTR_STRING, ML_ATTR_TENSOR, ML_ATTR_STRINGS,
    ML_ATTR_TYPE_COUNT
} ml_attr_type;

typedef struct {
    char *name;
    ml_attr_type type;
    int64_t i;
    double f;
    int64_t *ints;
    double *floats;
    size_t n;
    char *s;
    char **strs; /* STRINGS: n strings */
    ml_tensor t;
} ml_attr;

typedef struct {
    ml_op op;
    char *name; /* the ONNX node name, or "<op_type>_<index>" when it has none */
    int nin, nout;
    int *in;  /* value ids; -1 for an omitted optional input */
    int *out; /* value ids */
    int nattrs;
    ml_attr *attrs;
} ml_node;

typedef struct {
    char *name;
    int is_const;       /* initializer or Constant output: `value` holds it */
    int producer;       /* node index, -1 for inputs and initializers */
    ml_tensor value;    /* constants only */
} ml_value;

typedef struct ml_graph {
    ml_value *values;
    int nvalues, values_cap;
    ml_node *nodes;
    int nnodes;
    int ninputs, noutputs;
    int *inputs, *outputs;              /* value ids */
    ml_tensor *input_shapes;            /* shape only (data NULL); batch axis fixed to 1 */
    int64_t opset;                      /* default-domain opset */
} ml_graph;

#define ML_MAX_ELEMS ((int64_t)1 << 28) /* elements of one tensor, at most */
char *ml_strdup(const char *s);                            /* NULL when out of memory */
int ml_graph_find_value(const ml_graph *g, const char *name); /* -1 when absent */

/* ONNX bytes → graph. On failure returns a status and writes a one-line reason into err. */
veil_status ml_onnx_read(const uint8_t *buf, size_t len, ml_graph **out, char *err, size_t errlen);
void ml_graph_free(ml_graph *g);

/* Graph edits (the ONNX-ML lowering): a new value (its name copied; -1 when out of memory), a
 * new constant owning *t, a node inserted at index `at` (later nodes and their values' producers
 * shift by one; the graph owns the node's arrays from then on, also on failure). */
int ml_graph_add_value(ml_graph *g, const char *name);
int ml_graph_add_const(ml_graph *g, const char *name, ml_tensor *t);
veil_status ml_graph_insert_node(ml_graph *g, int at, ml_node *n);
void ml_node_free(ml_node *n);

/* ONNX-ML at import (onnx_ml.c): each LinearClassifier / LinearRegressor becomes a Gemm of its
 * scores followed by its client-side parts (ScoresLabel, ScoresTransform); each
 * TreeEnsembleClassifier / TreeEnsembleRegressor becomes TreeScores (the sum over its trees)
 * followed by ScoresTransform (base values, binary case, post transform) and ScoresLabel.
 * Unsupported attributes and modes are refused by name. */
veil_status ml_onnx_ml_lower(ml_graph *g, char *err, size_t errlen);

/* ONNX-ML kernels (onnx_ml.c), for ml_run_node and the client's post-processing. mode: the
 * ML_POST_* transform, ML_NORM_* norm or Cast target. */
enum { ML_POST_NONE, ML_POST_SOFTMAX, ML_POST_LOGISTIC, ML_POST_SOFTMAX_ZERO, ML_POST_COUNT };
/* ScoresTransform's mode: the post transform, plus 16 × the binary expansion of one score s */
enum { ML_BINARY_NONE, ML_BINARY_ONE_MINUS /* [1 − s, s] */, ML_BINARY_NEGATE /* [−s, s] */, ML_BINARY_COUNT };
enum { ML_NORM_MAX, ML_NORM_L1, ML_NORM_L2, ML_NORM_COUNT };
extern const char *const ml_post_names[ML_POST_COUNT]; /* "NONE", "SOFTMAX", ... as the ONNX-ML spec spells them */
extern const char *const ml_norm_names[ML_NORM_COUNT]; /* "MAX", "L1", "L2" */
int ml_name_index(const char *const *names, int n, const char *s); /* -1 when s is none of them */
/* base: nbase values added to the scores first (0: none) */
veil_status ml_scores_transform(int mode, const double *base, size_t nbase, const ml_tensor *x, ml_tensor *y);
veil_status ml_scores_label(const double *labels, size_t nlabels, const ml_tensor *x, ml_tensor *y);
veil_status ml_normalize(int mode, const ml_tensor *x, ml_tensor *y);
veil_status ml_run_onnx_ml(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen);

/* Formats a one-line reason into err and returns st (shared by the reader and the kernels). */
veil_status ml_errf(char *err, size_t errlen, veil_status st, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Attributes with defaults. */
const ml_attr *ml_attr_find(const ml_node *n, const char *name);
int64_t ml_attr_int(const ml_node *n, const char *name, int64_t def);
double ml_attr_float(const ml_node *n, const char *name, double def);
const char *ml_attr_string(const ml_node *n, const char *name, const char *def);

/* Tensors */
veil_status ml_tensor_alloc(ml_tensor *t, int ndim, const int64_t *shape);
veil_status ml_tensor_copy(ml_tensor *dst, const ml_tensor *src);
void ml_tensor_free(ml_tensor *t);
int ml_same_shape(const ml_tensor *a, const ml_tensor *b);

/* Float kernel of one node: ins[i] (NULL for an omitted optional input), outs[j] allocated here.
 * Errors (shapes, attributes) return a status with a reason in err. */
veil_status ml_run_node(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen);

/* Float forward of the whole graph: inputs (one per graph input) → outputs (allocated here). */
veil_status ml_forward(const ml_graph *g, const ml_tensor *inputs, ml_tensor *outputs, char *err, size_t errlen);

/* Element-wise ops: one non-constant operand, a per-element function. */
int ml_op_is_elementwise(ml_op op);

#endif
