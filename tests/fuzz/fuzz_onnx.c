/* libFuzzer target: the ONNX reader (protobuf-c over Debian's onnx.proto) and the importer behind
 * it. Every input goes through the reader; a graph that reads, with inputs of at most 4096
 * elements, is lowered (ONNX-ML operators) and run forward in floats on a ramp; one input in
 * eight (by its last byte) is also compiled end to end (a two-sample inputset, quantization, the
 * compiler's checks and parameter search) as `veil compile` would: that is the slow path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ml/ml.h"
#include "veil/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_IN = 16 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    ml_graph *g = NULL;
    if (ml_onnx_read(data, size, &g, err, sizeof err) != VEIL_OK) return 0;
    int64_t elems = 0;
    int ok = g->ninputs >= 1 && g->ninputs <= MAX_IN && g->noutputs >= 1 && g->noutputs <= MAX_IN;
    for (int i = 0; ok && i < g->ninputs; i++) elems += g->input_shapes[i].size;
    ok = ok && elems > 0 && elems <= 4096;
    if (ok && ml_onnx_ml_lower(g, err, sizeof err) == VEIL_OK) {
        ml_tensor in[MAX_IN] = {{0}}, out[MAX_IN] = {{0}};
        int built = 1;
        for (int i = 0; i < g->ninputs && built; i++) {
            built = ml_tensor_alloc(&in[i], g->input_shapes[i].ndim, g->input_shapes[i].shape) == VEIL_OK;
            for (int64_t e = 0; built && e < in[i].size; e++) in[i].data[e] = (double)(e % 17) / 8.0 - 1.0;
        }
        if (built && ml_forward(g, in, out, err, sizeof err) == VEIL_OK)
            for (int j = 0; j < g->noutputs; j++) ml_tensor_free(&out[j]);
        for (int i = 0; i < g->ninputs; i++) ml_tensor_free(&in[i]);
    }
    ml_graph_free(g);
    if (!ok || data[size - 1] % 8 != 0) return 0;
    double *x = malloc(sizeof(double) * (size_t)(2 * elems));
    if (!x) return 0;
    for (int64_t i = 0; i < elems; i++) x[i] = (double)(i % 17) / 8.0 - 1.0, x[elems + i] = -x[i];
    veil_model_options o;
    veil_model_options_default(&o);
    veil_model *m = NULL;
    if (veil_model_compile_buffer(data, size, x, 2, (size_t)elems, &o, &m) == VEIL_OK) (void)veil_model_output_size(m);
    veil_model_free(m);
    free(x);
    return 0;
}
