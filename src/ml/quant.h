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

/* Client-side post-processing after dequantization: a trailing Softmax / LogSoftmax / ArgMax /
 * Sigmoid / Cast, and the client-side parts of ONNX-ML models (ScoresLabel with its class labels,
 * ScoresTransform, Normalizer, ZipMap). */
#define ML_POST_MAX_VALUES 64 /* class labels of one classifier */
typedef struct {
    ml_op op;
    int64_t axis, keepdims, select_last;
    int64_t mode; /* ScoresTransform: ML_POST_*; Normalizer: ML_NORM_*; Cast: the ONNX type */
    int nv;       /* ScoresLabel: the class labels */
    double v[ML_POST_MAX_VALUES];
} ml_post_op;

int ml_is_post_op(ml_op op); /* may run on the client after decryption */

#define ML_MAX_IO VEIL_MODEL_MAX_IO /* inputs, and outputs, of one model */

#define ML_PRE_MAX 256 /* features of a client-side Scaler */
typedef struct {
    ml_quantizer q; /* model input → integers */
    /* before quantization, on the client: x ← (x − pre_off[f]) · pre_scale[f], f the index along
     * the last axis (a Scaler on the model input); npre 0: none */
    int npre;
    double pre_off[ML_PRE_MAX], pre_scale[ML_PRE_MAX];
    int ndim;
    int64_t shape[VEIL_MAX_DIMS], size;
} ml_in_info;

/* element e of input `in` (flat index), pre-processed: what the quantizer reads */
static inline double ml_input_pre(const ml_in_info *in, int64_t e, double x)
{
    if (in->npre <= 0) return x;
    int64_t f = e % in->npre;
    return (x - in->pre_off[f]) * in->pre_scale[f];
}

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
    /* automatic rounding (rounding_bits with auto_rounding): one line per rounded lookup */
    char *rounding_log;
    int nrounded;
    int tree_bits; /* a tree ensemble's input bits (its comparisons' lookups), 0 without one */
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
