/* libFuzzer target: the ONNX reader (protobuf-c over Debian's onnx.proto) and the importer behind
 * it. Every input goes through the reader; one that reads as a graph with a small input is
 * compiled end to end (ONNX-ML lowering, float forward pass over a two-sample inputset,
 * quantization, the compiler's checks and parameter search) as `veil compile` would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ml/ml.h"
#include "veil/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    ml_graph *g = NULL;
    if (ml_onnx_read(data, size, &g, err, sizeof err) != VEIL_OK) return 0;
    int64_t elems = 0;
    for (int i = 0; i < g->ninputs; i++) elems += g->input_shapes[i].size;
    ml_graph_free(g);
    if (elems <= 0 || elems > 4096) return 0;
    /* two samples: a ramp and its negative */
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
