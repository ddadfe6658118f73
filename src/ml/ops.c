/* The float forward pass of an imported graph (ONNX operator specifications, opsets 7–21), in
 * double precision: a table of kernels per operator (ops_elementwise.c, ops_linear.c,
 * ops_shape.c, onnx_ml.c). It serves the float model (checked against onnxruntime) and the
 * calibration of the quantized one. */
#include <string.h>

#include "ops_impl.h"

int ml_op_is_elementwise(ml_op op)
{
    switch (op) {
    case ML_OP_ADD: case ML_OP_SUB: case ML_OP_MUL: case ML_OP_DIV: case ML_OP_NEG: case ML_OP_RELU:
    case ML_OP_SIGMOID: case ML_OP_TANH: case ML_OP_LEAKY_RELU: case ML_OP_ELU: case ML_OP_SELU:
    case ML_OP_SOFTPLUS: case ML_OP_HARD_SIGMOID: case ML_OP_HARD_SWISH: case ML_OP_ERF: case ML_OP_CLIP:
    case ML_OP_ABS: case ML_OP_EXP: case ML_OP_LOG: case ML_OP_POW: case ML_OP_SQRT: case ML_OP_BATCH_NORM:
    case ML_OP_QUANT: case ML_OP_QUANTIZE_LINEAR: case ML_OP_DEQUANTIZE_LINEAR: case ML_OP_IDENTITY:
    case ML_OP_DROPOUT: case ML_OP_CAST: case ML_OP_SCALER:
        return 1;
    default:
        return 0;
    }
}

/* The kernel of each operator; the element-wise family answers the rest (and refuses by name
 * what it does not know). */
static const ml_kernel kernels[ML_OP_COUNT] = {
    [ML_OP_GEMM] = ml_kernel_gemm,
    [ML_OP_MATMUL] = ml_kernel_matmul,
    [ML_OP_CONV] = ml_kernel_conv,
    [ML_OP_AVERAGE_POOL] = ml_kernel_pool,
    [ML_OP_GLOBAL_AVERAGE_POOL] = ml_kernel_pool,
    [ML_OP_MAX_POOL] = ml_kernel_pool,
    [ML_OP_PAD] = ml_kernel_pad,
    [ML_OP_FLATTEN] = ml_kernel_shape_op,
    [ML_OP_RESHAPE] = ml_kernel_shape_op,
    [ML_OP_SQUEEZE] = ml_kernel_shape_op,
    [ML_OP_UNSQUEEZE] = ml_kernel_shape_op,
    [ML_OP_TRANSPOSE] = ml_kernel_shape_op,
    [ML_OP_CONCAT] = ml_kernel_concat,
    [ML_OP_IDENTITY] = ml_kernel_identity,
    [ML_OP_DROPOUT] = ml_kernel_dropout,
    [ML_OP_CONSTANT] = ml_kernel_constant,
    [ML_OP_SOFTMAX] = ml_kernel_softmax,
    [ML_OP_LOG_SOFTMAX] = ml_kernel_softmax,
    [ML_OP_ARGMAX] = ml_kernel_softmax,
    [ML_OP_SHAPE] = ml_kernel_shape,
    [ML_OP_GATHER] = ml_kernel_gather,
    [ML_OP_SCALER] = ml_run_onnx_ml,
    [ML_OP_NORMALIZER] = ml_run_onnx_ml,
    [ML_OP_ZIPMAP] = ml_run_onnx_ml,
    [ML_OP_SCORES_LABEL] = ml_run_onnx_ml,
    [ML_OP_SCORES_TRANSFORM] = ml_run_onnx_ml,
    [ML_OP_LINEAR_CLASSIFIER] = ml_run_onnx_ml,
    [ML_OP_LINEAR_REGRESSOR] = ml_run_onnx_ml,
    [ML_OP_TREE_ENSEMBLE_CLASSIFIER] = ml_run_onnx_ml,
    [ML_OP_TREE_ENSEMBLE_REGRESSOR] = ml_run_onnx_ml,
    [ML_OP_TREE_SCORES] = ml_run_onnx_ml,
};

veil_status ml_run_node(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen)
{
    for (int j = 0; j < n->nout; j++) memset(&outs[j], 0, sizeof outs[j]);
    if (errlen) err[0] = 0;
    if (n->op != ML_OP_CONSTANT && (n->nin < 1 || !ins[0]))
        return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s' (%s) has no input", n->name, ml_op_names[n->op]);
    const ml_kernel k = (unsigned)n->op < ML_OP_COUNT && kernels[n->op] ? kernels[n->op] : ml_kernel_elementwise;
    veil_status st = k(n, ins, outs, err, errlen);
    if (st == VEIL_ERR_NOMEM) ml_errf(err, errlen, st, "node '%s': out of memory", n->name);
    else if (st != VEIL_OK && !*err) ml_errf(err, errlen, st, "node '%s' (%s) failed", n->name, ml_op_names[n->op]);
    return st;
}

veil_status ml_forward(const ml_graph *g, const ml_tensor *inputs, ml_tensor *outputs, char *err, size_t errlen)
{
    ml_tensor *vals = veil_calloc((size_t)g->nvalues + 1, sizeof(ml_tensor));
    const ml_tensor *ins[64];
    veil_status st = VEIL_OK;
    if (!vals) return VEIL_ERR_NOMEM;
    for (int i = 0; i < g->ninputs && st == VEIL_OK; i++) st = ml_tensor_copy(&vals[g->inputs[i]], &inputs[i]);
    for (int k = 0; k < g->nnodes && st == VEIL_OK; k++) {
        const ml_node *n = &g->nodes[k];
        if (n->nin > 64) {
            st = ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s' has more than 64 inputs", n->name);
            break;
        }
        for (int i = 0; i < n->nin; i++) {
            int v = n->in[i];
            ins[i] = v < 0 ? NULL : g->values[v].is_const ? &g->values[v].value : vals[v].data ? &vals[v] : NULL;
            if (v >= 0 && !ins[i]) st = ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s' reads an unset value", n->name);
        }
        if (st != VEIL_OK) break;
        ml_tensor outs[8];
        if (n->nout > 8) {
            st = ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s' has more than 8 outputs", n->name);
            break;
        }
        if ((st = ml_run_node(n, ins, outs, err, errlen)) != VEIL_OK) break;
        for (int j = 0; j < n->nout; j++) vals[n->out[j]] = outs[j];
    }
    for (int j = 0; j < g->noutputs && st == VEIL_OK; j++) {
        int v = g->outputs[j];
        st = ml_tensor_copy(&outputs[j], g->values[v].is_const ? &g->values[v].value : &vals[v]);
    }
    for (int i = 0; i < g->nvalues; i++) ml_tensor_free(&vals[i]);
    veil_free(vals);
    return st;
}
