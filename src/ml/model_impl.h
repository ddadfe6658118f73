/* struct veil_model, shared by model.c and the bundle reader/writer. Internal to src/ml/. */
#ifndef VEIL_ML_MODEL_IMPL_H
#define VEIL_ML_MODEL_IMPL_H

#include "quant.h"
#include "veil/model.h"

struct veil_model {
    veil_model_options opts;
    ml_graph *fg; /* the imported float graph; NULL for a model loaded from a bundle */
    veil_circuit *circuit;
    ml_quantizer in_q;
    double out_scale, out_zp;
    int in_ndim, out_ndim, qout_ndim;
    int64_t in_shape[VEIL_MAX_DIMS], out_shape[VEIL_MAX_DIMS], qout_shape[VEIL_MAX_DIMS];
    int npost;
    ml_post_op post[8];
    char *report;
    unsigned max_bits;
    veil_secret_key *sk;
    veil_eval_keys *ek;
    veil_rng *rng; /* simulation noise */
};

veil_status ml_model_fail(veil_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
