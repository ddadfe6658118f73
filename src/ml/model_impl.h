/* struct veil_model, shared by model.c and the bundle reader/writer. Internal to src/ml/. */
#ifndef VEIL_ML_MODEL_IMPL_H
#define VEIL_ML_MODEL_IMPL_H

#include "quant.h"
#include "veil/model.h"

struct veil_model {
    veil_model_options opts;
    ml_graph *fg; /* the imported float graph; NULL for a model loaded from a bundle */
    veil_circuit *circuit;
    int nin, nout;
    ml_in_info in[ML_MAX_IO];   /* shapes and quantizers, in the model's input order */
    ml_out_info out[ML_MAX_IO]; /* names, dequantizers, shapes, client-side post-processing */
    int64_t in_total, out_total, qout_total; /* one sample: every input's (output's) elements */
    char *report;
    char *compile_log;       /* automatic rounding's lines (NULL for a loaded model) */
    veil_model_accuracy acc; /* its check against the float model */
    unsigned max_bits;
    int tree_bits; /* compiled: a tree ensemble's input bits, 0 without one (or loaded) */
    int nrounded;  /* compiled: accumulators automatic rounding rounded */
    /* compiled classifier with scores: their relative RMS error against the float model's on the
     * inputset (what breaks a tie in agreement between calibrations); 0 otherwise */
    double score_err;
    veil_secret_key *sk;
    veil_eval_keys *ek;
    veil_rng *rng; /* simulation noise */
};

/* in_total, out_total, qout_total from the per-input and per-output sizes */
void ml_model_totals(veil_model *m);
veil_status ml_model_fail(veil_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
