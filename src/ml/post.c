/* Client-side post-processing: the ops that run in the clear after decryption. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant_impl.h"

int ml_is_post_op(ml_op op)
{
    return op == ML_OP_SOFTMAX || op == ML_OP_LOG_SOFTMAX || op == ML_OP_ARGMAX || op == ML_OP_SIGMOID ||
           op == ML_OP_CAST || op == ML_OP_NORMALIZER || op == ML_OP_ZIPMAP || op == ML_OP_SCORES_LABEL ||
           op == ML_OP_SCORES_TRANSFORM || op == ML_OP_IDENTITY;
}

/* every reader of the value is a node that may run on the client */

veil_status ml_post_apply(const ml_post_op *p, int npost, const ml_tensor *y, ml_tensor *out)
{
    veil_status st = ml_tensor_copy(out, y);
    for (int i = 0; i < npost && st == VEIL_OK; i++) {
        ml_tensor r[1];
        switch (p[i].op) {
        case ML_OP_SCORES_TRANSFORM: st = ml_scores_transform((int)p[i].mode, p[i].v, (size_t)p[i].nv, out, &r[0]); break;
        case ML_OP_SCORES_LABEL: st = ml_scores_label(p[i].v, (size_t)p[i].nv, out, &r[0]); break;
        case ML_OP_NORMALIZER: st = ml_normalize((int)p[i].mode, out, &r[0]); break;
        case ML_OP_ZIPMAP: st = ml_tensor_copy(&r[0], out); break;
        default: {
            ml_attr attrs[4] = {{.name = "axis", .type = ML_ATTR_INT, .i = p[i].axis},
                                {.name = "keepdims", .type = ML_ATTR_INT, .i = p[i].keepdims},
                                {.name = "select_last_index", .type = ML_ATTR_INT, .i = p[i].select_last},
                                {.name = "to", .type = ML_ATTR_INT, .i = p[i].mode}};
            int in = 0, o = 0;
            ml_node n = {.op = p[i].op, .name = "post", .nin = 1, .nout = 1, .in = &in, .out = &o, .nattrs = 4, .attrs = attrs};
            const ml_tensor *ins[1] = {out};
            char err[160];
            st = ml_run_node(&n, ins, r, err, sizeof err);
        }
        }
        if (st == VEIL_OK) {
            ml_tensor_free(out);
            *out = r[0];
        }
    }
    if (st != VEIL_OK) ml_tensor_free(out);
    return st;
}
