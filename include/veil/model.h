/* veil/model.h — quantized machine-learning models: ONNX in, an FHE circuit out.
 *
 * The equivalent of Concrete ML's compile_onnx_model / compile_brevitas_qat_model and of its
 * QuantizedModule. A float ONNX model (post-training quantization) or a quantization-aware one
 * (QONNX `Quant` nodes from Brevitas, or QuantizeLinear/DequantizeLinear pairs) is imported,
 * calibrated on an inputset, quantized to integers and compiled:
 *
 *     veil_model_options o;  veil_model_options_default(&o);   // n_bits 8, p_error 2^-40
 *     o.n_bits.op_inputs = o.n_bits.op_weights = 6;  o.rounding_bits = 6;
 *     veil_model *m;
 *     if (veil_model_compile_file("mlp.onnx", inputset, nsamples, 30, &o, &m) != VEIL_OK)
 *         fprintf(stderr, "%s\n", veil_model_last_error());
 *     double y[2];
 *     veil_model_forward(m, VEIL_MODE_SIMULATE, x, y);            // x: one sample, row-major
 *     veil_model_keygen(m, NULL);                                  // for VEIL_MODE_EXECUTE
 *     veil_model_forward(m, VEIL_MODE_EXECUTE, x, y);
 *
 * Inputs and outputs are one sample at a time, with the model's batch axis of size 1. A model of
 * several inputs (or outputs) takes (gives) one sample as every input's (output's) elements, one
 * after another in the model's order: veil_model_input_size is their sum, and the _at accessors
 * give each one's name, shape and size. Quantization follows Concrete ML: per-tensor
 * uniform affine quantizers calibrated by min/max over the inputset (zero always representable),
 * weights symmetric signed when their range straddles zero evenly, integer Gemm/Conv with the
 * zero points folded into the constants, and every element-wise float chain between two linear
 * layers fused into one table lookup per element. A final Softmax, LogSoftmax, ArgMax or Sigmoid
 * runs in the clear after decryption (on the client).
 */
#ifndef VEIL_MODEL_H
#define VEIL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "veil/compiler.h"
#include "veil/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { VEIL_MODE_CLEAR, VEIL_MODE_SIMULATE, VEIL_MODE_EXECUTE, VEIL_MODE_COUNT } veil_mode;
extern const char *const veil_mode_names[VEIL_MODE_COUNT]; /* "clear", "simulate", "execute" */

/* Bit-widths of the quantizers. 0 in model_inputs / model_outputs means max(5, op_inputs) for
 * post-training models. For quantization-aware models op_inputs and op_weights are ignored (the
 * model's own Quant nodes decide); model_inputs quantizes a model input that no Quant node reads
 * first, model_outputs an output that no Quant node sets. */
typedef struct {
    int op_inputs, op_weights, model_inputs, model_outputs;
} veil_n_bits;

typedef enum { VEIL_ROUNDING_EXACT, VEIL_ROUNDING_APPROXIMATE, VEIL_ROUNDING_COUNT } veil_rounding_method;

typedef struct {
    veil_n_bits n_bits;     /* default {8, 8, 0, 0} */
    int qat;                /* 1: the model is quantization-aware; refuse float linear layers without Quant inputs */
    int rounding_bits;      /* 0: off; 2..8: round accumulators wider than this before each lookup */
    veil_rounding_method rounding_method;
    double p_error;         /* per lookup (default 2^-40) */
    double global_p_error;  /* > 0: for the whole circuit instead */
    int single_precision;   /* 1: one parameter set for the whole circuit (no precision partitions) */
    /* Automatic rounding (default on; off when rounding_bits is set): where a lookup would make the
     * circuit exceed the ceiling, round every accumulator wider than R bits, R the widest of 8..2
     * that keeps it within; each channel (the axis after the batch one) is rounded over its own
     * range, so narrow channels keep more of their bits. The ceiling is max_lookup_bits when set,
     * else parameters at N <= 2^max_log2_N. The compiled model is then checked in the clear against
     * the float model on the inputset (veil_model_accuracy) and veil_model_compile_log says what was
     * rounded, the agreement, and a warning below min_agreement. */
    int auto_rounding;      /* 1 (default) or 0: no rounding unless rounding_bits */
    int max_lookup_bits;    /* 0 (default): the ceiling is max_log2_N; 2..8: lookups at most this wide */
    int max_log2_N;         /* default 13 */
    double min_agreement;   /* default 0.98: classes agreeing, or 1 - relative error for a regressor */
    /* Bit i: model input i is sent in the clear, as Concrete's inputs_encryption_status "clear"
     * allows (the server sees its values; the others stay encrypted). The circuit is the same: the
     * server runs a clear input as trivial (noiseless) ciphertexts. Default 0. */
    uint32_t clear_inputs;
    /* 0 (default): off. Else, with automatic rounding on max_log2_N's ceiling: when the compiled
     * model misses min_agreement on the inputset, compile again with the ceiling one step higher,
     * up to N = 2^raise_log2_N; the first that meets it is kept, else the one that agreed best (the
     * lower ceiling on a tie). Each step roughly doubles the evaluation keys; the compile log names
     * each ceiling tried and its agreement. */
    int raise_log2_N;
    /* Calibration of the quantizers veil chooses: input_clip those of the model inputs that no
     * Quant node reads first, activation_clip those of the values each lookup produces (not a
     * quantization-aware model's own). 1: a quantizer covers its values' whole range on the
     * inputset; p in [0.9, 1): its range runs from the (1 − p) to the p quantile of those values,
     * and what lies beyond saturates, so that the few samples holding most of a heavy-tailed range
     * leave the common values more levels, and the accumulators after them narrower ranges to
     * round. 0 (default): automatic, the whole ranges, except that when automatic rounding rounded
     * an accumulator and the model then misses min_agreement: then the percentiles are tried at
     * the same ceiling, one axis at a time (VEIL_CLIP_VALUES with the inputs' whole ranges, then
     * VEIL_CLIP_INPUTS with the best of those), and the pair that agrees best with the float model
     * is kept (on a tie, a classifier's lower score error, then the least clipping); the compile
     * log names it. */
    double input_clip, activation_clip;
} veil_model_options;

/* the percentiles automatic calibration tries, least clipping first (1: the whole range) */
#define VEIL_CLIP_INPUTS {1, 0.999, 0.995, 0.99}
#define VEIL_CLIP_VALUES {1, 0.999, 0.998, 0.995, 0.99}

void veil_model_options_default(veil_model_options *o);

typedef struct veil_model veil_model;

/* Compile from an ONNX file or buffer (borrowed) and an inputset of `nsamples` samples, each
 * every input's elements (row-major, inputs in the model's order), one sample after another
 * (nsamples · sample_size doubles, borrowed). sample_size must equal the inputs' total size (else
 * VEIL_ERR_INVALID_ARG, with both sizes). */
VEIL_NODISCARD veil_status veil_model_compile_file(const char *onnx_path, const double *inputset, size_t nsamples,
                                                   size_t sample_size, const veil_model_options *o, veil_model **out);
VEIL_NODISCARD veil_status veil_model_compile_buffer(const uint8_t *onnx, size_t len, const double *inputset,
                                                     size_t nsamples, size_t sample_size, const veil_model_options *o,
                                                     veil_model **out);
/* The calling thread's last model error, one line naming the node at fault ("" when none). */
const char *veil_model_last_error(void);
void veil_model_free(veil_model *m); /* wipes the keys it holds; accepts NULL */

/* The input names of an ONNX file, in the model's order, without compiling it (for tools that
 * match named arrays to inputs before the compile): names longer than 64 bytes are cut. */
#define VEIL_MODEL_NAME_BYTES 65
VEIL_NODISCARD veil_status veil_model_onnx_input_names(const char *onnx_path, char (*names)[VEIL_MODEL_NAME_BYTES],
                                                       size_t max, size_t *count);

/* The model's inputs and outputs (at most VEIL_MODEL_MAX_IO of each): names (the ONNX graph's),
 * shapes (batch axis included, of size 1; ndim returned, -1 when out of range) and sizes. */
#define VEIL_MODEL_MAX_IO 16
size_t veil_model_input_count(const veil_model *m);
size_t veil_model_output_count(const veil_model *m);
const char *veil_model_input_name(const veil_model *m, size_t i);  /* "" when out of range */
const char *veil_model_output_name(const veil_model *m, size_t j); /* "" when out of range */
int veil_model_input_shape_at(const veil_model *m, size_t i, int64_t shape[VEIL_MAX_DIMS]);
int veil_model_output_shape_at(const veil_model *m, size_t j, int64_t shape[VEIL_MAX_DIMS]);
int64_t veil_model_input_size_at(const veil_model *m, size_t i); /* -1 when out of range */
int64_t veil_model_output_size_at(const veil_model *m, size_t j);
/* The first input's and first output's shapes; the sizes of one whole sample: every input's
 * (output's) elements, and the circuit's integer outputs (before dequantization and client-side
 * post-processing). */
int veil_model_input_shape(const veil_model *m, int64_t shape[VEIL_MAX_DIMS]);  /* returns ndim */
int veil_model_output_shape(const veil_model *m, int64_t shape[VEIL_MAX_DIMS]); /* returns ndim */
int64_t veil_model_input_size(const veil_model *m);
int64_t veil_model_output_size(const veil_model *m);
int64_t veil_model_quantized_output_size(const veil_model *m);
/* The compiled circuit (borrowed): listing, parameters, statistics. */
const veil_circuit *veil_model_circuit(const veil_model *m);
/* Per-layer ranges and bit-widths (like Concrete ML's bitwidth_and_range_report) and the maximum
 * bit-width. Borrowed text. */
const char *veil_model_report(const veil_model *m);
unsigned veil_model_max_bit_width(const veil_model *m);
/* What automatic rounding did: one line per rounded lookup, a summary with the agreement against
 * the float model, and a warning when it is below min_agreement ("" when auto_rounding was off or
 * for a loaded model). Borrowed text. */
const char *veil_model_compile_log(const veil_model *m);
/* The check against the float model made at compile time with auto_rounding (checked 0 otherwise
 * and for a loaded model): the clear model's classes (the first output's label, or its argmax)
 * agreeing with the float model's, or for a regressor (the first output has one value per sample
 * and no label) the RMS of their difference over the float outputs' standard deviation. */
typedef struct {
    int checked, classifier;
    size_t samples;   /* the first 2000 of the inputset at most */
    double agreement; /* classifiers: fraction of samples of equal class */
    double rel_error; /* regressors */
} veil_model_accuracy;
void veil_model_get_accuracy(const veil_model *m, veil_model_accuracy *a);

/* The three steps of one inference, and all of them in one call. */
VEIL_NODISCARD veil_status veil_model_quantize_input(const veil_model *m, const double *x, int64_t *q);
/* mode EXECUTE needs keys (veil_model_keygen); SIMULATE draws noise from the model's generator. */
VEIL_NODISCARD veil_status veil_model_quantized_forward(veil_model *m, veil_mode mode, const int64_t *q,
                                                        int64_t *q_out);
/* Dequantize, then apply the client-side post-processing (Softmax, ArgMax, ...). */
VEIL_NODISCARD veil_status veil_model_dequantize_output(const veil_model *m, const int64_t *q_out, double *y);
VEIL_NODISCARD veil_status veil_model_forward(veil_model *m, veil_mode mode, const double *x, double *y);
/* The imported float graph, before quantization (the reference onnxruntime is compared with). */
VEIL_NODISCARD veil_status veil_model_float_forward(const veil_model *m, const double *x, double *y);

/* Secret and evaluation keys for mode EXECUTE, held by the model. seed = NULL: from the
 * operating system's CSPRNG; a seed is for tests only. */
VEIL_NODISCARD veil_status veil_model_keygen(veil_model *m, const uint8_t *seed);
/* A few lines on the model: input and output shapes and quantizers, options, parameters,
 * statistics (PBS count, key and ciphertext sizes, error probability). Allocated (veil_free). */
char *veil_model_describe(const veil_model *m);

/* ---- bundles ----------------------------------------------------------------------------------- */
/* Save a compiled model as DIR/client.veil (parameters, the circuit's interface and encoding, the
 * quantizers and the client-side post-processing: what a client needs to encrypt and decrypt) and
 * DIR/server.veil (parameters and the program: what a server needs to run). DIR is created when
 * missing; each file is written beside its path and renamed, never half written. Keys are not
 * saved. */
VEIL_NODISCARD veil_status veil_model_save(const veil_model *m, const char *dir);
/* Load both bundles of DIR. The loaded model runs in the three modes (keys: veil_model_keygen) and
 * has no float graph. A file of the wrong kind, a corrupted one, or a client and a server bundle of
 * different compilations are refused with a one-line reason (veil_model_last_error). */
VEIL_NODISCARD veil_status veil_model_load(const char *dir, veil_model **out);
/* The same in memory: server 0 gives the client bundle, 1 the server bundle (*out: veil_free).
 * Deserialize with server = NULL gives a client's model: quantizers, encryption and decryption,
 * and a circuit that refuses to run (the server has the program). */
VEIL_NODISCARD veil_status veil_model_serialize(const veil_model *m, int server, uint8_t **out, size_t *len);
VEIL_NODISCARD veil_status veil_model_deserialize(const uint8_t *client, size_t client_len, const uint8_t *server,
                                                  size_t server_len, veil_model **out);

/* Seed the simulation noise (tests); by default it comes from the operating system. */
VEIL_NODISCARD veil_status veil_model_seed_simulation(veil_model *m, const uint8_t seed[VEIL_SEED_BYTES]);

#ifdef __cplusplus
}
#endif
#endif
