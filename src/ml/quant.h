/* Quantization of an imported float graph into veil's integer op-graph. Internal to src/ml/. */
#ifndef VEIL_ML_QUANT_H
#define VEIL_ML_QUANT_H

#include "ml.h"
#include "veil/model.h"

/* real = scale · (q − zp), q an integer in [qmin, qmax] */
typedef struct {
    double scale, zp, qmin, qmax;
} ml_quantizer;

double ml_quantize_value(const ml_quantizer *q, double x); /* clamp(round_half_even(x/scale) + zp) */

/* Client-side post-processing after dequantization (a trailing Softmax / LogSoftmax / ArgMax /
 * Sigmoid). */
typedef struct {
    ml_op op;
    int64_t axis, keepdims, select_last;
} ml_post_op;

#define ML_MAX_IO VEIL_MODEL_MAX_IO /* inputs, and outputs, of one model */

typedef struct {
    ml_quantizer q; /* model input → integers */
    int ndim;
    int64_t shape[VEIL_MAX_DIMS], size;
} ml_in_info;

typedef struct {
    char name[65];
    double scale, zp; /* circuit output → real */
    int qndim, ndim;  /* the circuit's output, and the model's after post-processing */
    int64_t qshape[VEIL_MAX_DIMS], shape[VEIL_MAX_DIMS], qsize, size;
    int npost;
    ml_post_op post[8];
} ml_out_info;

typedef struct {
    veil_graph *g; /* encrypted inputs, in the model's order; one graph output per model output */
    int nin, nout;
    ml_in_info in[ML_MAX_IO];
    ml_out_info out[ML_MAX_IO];
    int64_t *inputset_q; /* nsamples × (every input's elements, in order) */
    char *report;
    unsigned max_bits;
    /* an output is a linear form wider than rounding_bits: it can be decrypted at full precision
     * (output_lookup 0) or rounded to its high bits by one lookup per element (output_lookup 1) */
    int output_choice;
    void **ctxs; /* table closures borrowed by g until compile */
    size_t nctx;
} ml_quantized;

/* output_lookup: 1 keeps a wide linear output's rounded high bits through one lookup per element;
 * 0 leaves it a linear form, decrypted at full precision (the compiler then constrains its noise
 * below its lowest bit). */
/* inputset: nsamples × (every input's elements, in the model's input order) */
veil_status ml_quantize(const ml_graph *fg, const double *inputset, size_t nsamples, const veil_model_options *o,
                        int output_lookup, ml_quantized *out, char *err, size_t errlen);
void ml_quantized_free(ml_quantized *q); /* accepts a zeroed struct */

/* Post-processing in place: y (shape, size) → out (allocated). */
veil_status ml_post_apply(const ml_post_op *p, int npost, const ml_tensor *y, ml_tensor *out);

void ml_quant_bounds(int is_signed, int narrow, double bits, double *lo, double *hi);
double ml_quant_round(const char *mode, double v);

#endif
