/* Float kernels, linear family: Gemm, MatMul (batched, broadcast), Conv and the pools. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops_impl.h"


static veil_status run_gemm(const ml_node *n, const ml_tensor *const *ins, ml_tensor *y, char *err, size_t errlen)
{
    const ml_tensor *A = ins[0], *B = n->nin > 1 ? ins[1] : NULL, *C = n->nin > 2 ? ins[2] : NULL;
    if (!B || A->ndim != 2 || B->ndim != 2)
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Gemm needs 2-D A and B", n->name);
    int ta = (int)ml_attr_int(n, "transA", 0), tb = (int)ml_attr_int(n, "transB", 0);
    double alpha = ml_attr_float(n, "alpha", 1), beta = ml_attr_float(n, "beta", 1);
    int64_t M = ta ? A->shape[1] : A->shape[0], K = ta ? A->shape[0] : A->shape[1];
    int64_t K2 = tb ? B->shape[1] : B->shape[0], N = tb ? B->shape[0] : B->shape[1];
    if (K != K2)
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Gemm inner dimensions %lld and %lld differ", n->name,
                    (long long)K, (long long)K2);
    veil_status st = ml_tensor_alloc(y, 2, (int64_t[]){M, N});
    if (st != VEIL_OK) return st;
    int64_t cst[VEIL_MAX_DIMS], idx[2] = {0, 0};
    if (C) {
        ml_tensor probe = {.ndim = 2, .shape = {M, N}};
        int nd;
        int64_t sh[VEIL_MAX_DIMS];
        if (broadcast_shape(&probe, C, &nd, sh) != VEIL_OK || nd != 2 || sh[0] != M || sh[1] != N) {
            ml_tensor_free(y);
            return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Gemm C does not broadcast to (%lld, %lld)", n->name,
                        (long long)M, (long long)N);
        }
        strides_of(C, cst);
    }
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += A->data[ta ? k * M + i : i * K + k] * B->data[tb ? j * K + k : k * N + j];
            idx[0] = i, idx[1] = j;
            y->data[i * N + j] = alpha * s + (C ? beta * C->data[bidx(C, cst, 2, idx)] : 0);
        }
    return VEIL_OK;
}

static veil_status run_matmul(const ml_node *n, const ml_tensor *a0, const ml_tensor *b0, ml_tensor *y, char *err,
                              size_t errlen)
{
    ml_tensor a = *a0, b = *b0; /* shape views */
    int pa = 0, pb = 0;
    if (a.ndim == 1) { a.ndim = 2; a.shape[1] = a.shape[0]; a.shape[0] = 1; pa = 1; }
    if (b.ndim == 1) { b.ndim = 2; b.shape[1] = 1; pb = 1; }
    if (a.ndim < 2 || b.ndim < 2 || a.shape[a.ndim - 1] != b.shape[b.ndim - 2])
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': MatMul shapes do not match", n->name);
    int64_t M = a.shape[a.ndim - 2], K = a.shape[a.ndim - 1], N = b.shape[b.ndim - 1];
    ml_tensor ab = a, bb = b;
    ab.ndim -= 2, bb.ndim -= 2;
    int nd;
    int64_t bs[VEIL_MAX_DIMS];
    if (broadcast_shape(&ab, &bb, &nd, bs) != VEIL_OK || nd + 2 > VEIL_MAX_DIMS)
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': MatMul batch shapes cannot be broadcast", n->name);
    int64_t shape[VEIL_MAX_DIMS], nb = 1;
    for (int i = 0; i < nd; i++) shape[i] = bs[i], nb *= bs[i];
    shape[nd] = M, shape[nd + 1] = N;
    veil_status st = ml_tensor_alloc(y, nd + 2, shape);
    if (st != VEIL_OK) return st;
    int64_t sa[VEIL_MAX_DIMS], sb[VEIL_MAX_DIMS], idx[VEIL_MAX_DIMS] = {0};
    ab.size = 1, bb.size = 1;
    strides_of(&ab, sa);
    strides_of(&bb, sb);
    for (int64_t t = 0; t < nb; t++) {
        const double *A = a.data + bidx(&ab, sa, nd, idx) * M * K, *B = b.data + bidx(&bb, sb, nd, idx) * K * N;
        double *Y = y->data + t * M * N;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
                Y[i * N + j] = s;
            }
        next_index(nd, bs, idx);
    }
    /* drop the axes added for 1-D operands */
    if (pa) {
        for (int i = y->ndim - 2; i < y->ndim - 1; i++) y->shape[i] = y->shape[i + 1];
        y->ndim--;
    }
    if (pb) y->ndim--;
    return VEIL_OK;
}

/* Conv / pooling window geometry: 2-D spatial over (N, C, H, W). */
typedef struct {
    int64_t k[2], s[2], d[2], p[4]; /* kernel, strides, dilations, pads (top, left, bottom, right) */
    int64_t oh, ow;
} win2d;

static veil_status window_attrs(const ml_node *n, const ml_tensor *x, const int64_t *kdef, win2d *w, char *err,
                                size_t errlen)
{
    if (x->ndim != 4)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s' (%s): only 2-D (N, C, H, W) inputs are supported",
                    n->name, ml_op_names[n->op]);
    const ml_attr *ks = ml_attr_find(n, "kernel_shape"), *st = ml_attr_find(n, "strides"),
                  *dl = ml_attr_find(n, "dilations"), *pd = ml_attr_find(n, "pads");
    for (int i = 0; i < 2; i++) {
        w->k[i] = ks && ks->n == 2 ? ks->ints[i] : kdef ? kdef[i] : 0;
        w->s[i] = st && st->n == 2 ? st->ints[i] : 1;
        w->d[i] = dl && dl->n == 2 ? dl->ints[i] : 1;
    }
    for (int i = 0; i < 4; i++) w->p[i] = pd && pd->n == 4 ? pd->ints[i] : 0;
    if (ml_attr_int(n, "ceil_mode", 0) != 0)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s' (%s): ceil_mode=1 is not supported", n->name,
                    ml_op_names[n->op]);
    const char *ap = ml_attr_string(n, "auto_pad", "NOTSET");
    int64_t H = x->shape[2], W = x->shape[3];
    if (strcmp(ap, "VALID") == 0) {
        memset(w->p, 0, sizeof w->p);
    } else if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
        for (int i = 0; i < 2; i++) {
            int64_t in = i ? W : H, out = (in + w->s[i] - 1) / w->s[i];
            int64_t tot = (out - 1) * w->s[i] + (w->k[i] - 1) * w->d[i] + 1 - in;
            if (tot < 0) tot = 0;
            int64_t small = tot / 2, big = tot - small;
            w->p[i] = ap[5] == 'U' ? small : big;
            w->p[i + 2] = ap[5] == 'U' ? big : small;
        }
    } else if (strcmp(ap, "NOTSET") != 0) {
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': auto_pad '%s' is not supported", n->name, ap);
    }
    for (int i = 0; i < 2; i++)
        if (w->k[i] < 1 || w->s[i] < 1 || w->d[i] < 1 || w->p[i] < 0 || w->p[i + 2] < 0)
            return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': bad kernel, stride, dilation or pad", n->name);
    w->oh = (H + w->p[0] + w->p[2] - (w->k[0] - 1) * w->d[0] - 1) / w->s[0] + 1;
    w->ow = (W + w->p[1] + w->p[3] - (w->k[1] - 1) * w->d[1] - 1) / w->s[1] + 1;
    if (w->oh < 1 || w->ow < 1)
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': the window is larger than the padded input", n->name);
    return VEIL_OK;
}

static veil_status run_conv(const ml_node *n, const ml_tensor *const *ins, ml_tensor *y, char *err, size_t errlen)
{
    const ml_tensor *x = ins[0], *w = n->nin > 1 ? ins[1] : NULL, *b = n->nin > 2 ? ins[2] : NULL;
    if (!w || w->ndim != 4)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': only 2-D Conv (4-D weights) is supported", n->name);
    win2d g;
    veil_status st = window_attrs(n, x, w->shape + 2, &g, err, errlen);
    if (st != VEIL_OK) return st;
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], F = w->shape[0];
    int64_t grp = ml_attr_int(n, "group", 1);
    if (grp < 1 || C % grp || F % grp || w->shape[1] != C / grp || g.k[0] != w->shape[2] || g.k[1] != w->shape[3] ||
        (b && b->size != F))
        return ml_errf(err, errlen, VEIL_ERR_GRAPH, "node '%s': Conv weights (%lld, %lld, %lld, %lld) do not fit input channels %lld, group %lld",
                    n->name, (long long)w->shape[0], (long long)w->shape[1], (long long)w->shape[2],
                    (long long)w->shape[3], (long long)C, (long long)grp);
    if ((st = ml_tensor_alloc(y, 4, (int64_t[]){N, F, g.oh, g.ow})) != VEIL_OK) return st;
    int64_t cg = C / grp, fg = F / grp;
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t f = 0; f < F; f++)
            for (int64_t oy = 0; oy < g.oh; oy++)
                for (int64_t ox = 0; ox < g.ow; ox++) {
                    double s = b ? b->data[f] : 0;
                    int64_t c0 = (f / fg) * cg;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t ky = 0; ky < g.k[0]; ky++)
                            for (int64_t kx = 0; kx < g.k[1]; kx++) {
                                int64_t iy = oy * g.s[0] - g.p[0] + ky * g.d[0], ix = ox * g.s[1] - g.p[1] + kx * g.d[1];
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += x->data[((nn * C + c0 + c) * H + iy) * W + ix] *
                                     w->data[((f * cg + c) * g.k[0] + ky) * g.k[1] + kx];
                            }
                    y->data[((nn * F + f) * g.oh + oy) * g.ow + ox] = s;
                }
    return VEIL_OK;
}

static veil_status run_pool(const ml_node *n, const ml_tensor *x, ml_tensor *y, char *err, size_t errlen)
{
    win2d g;
    int global = n->op == ML_OP_GLOBAL_AVERAGE_POOL;
    if (global && x->ndim != 4)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': only 4-D GlobalAveragePool is supported", n->name);
    veil_status st;
    if (global) {
        memset(&g, 0, sizeof g);
        g.k[0] = x->shape[2], g.k[1] = x->shape[3], g.s[0] = g.s[1] = g.d[0] = g.d[1] = 1, g.oh = g.ow = 1;
    } else if ((st = window_attrs(n, x, NULL, &g, err, errlen)) != VEIL_OK) {
        return st;
    }
    int maxp = n->op == ML_OP_MAX_POOL;
    int include_pad = (int)ml_attr_int(n, "count_include_pad", 0);
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    if ((st = ml_tensor_alloc(y, 4, (int64_t[]){N, C, g.oh, g.ow})) != VEIL_OK) return st;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++) {
                double s = maxp ? -INFINITY : 0;
                int64_t cnt = 0;
                for (int64_t ky = 0; ky < g.k[0]; ky++)
                    for (int64_t kx = 0; kx < g.k[1]; kx++) {
                        int64_t iy = oy * g.s[0] - g.p[0] + ky * g.d[0], ix = ox * g.s[1] - g.p[1] + kx * g.d[1];
                        int inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
                        if (!inside) {
                            /* padded positions count in the divisor when count_include_pad, unless they
                             * lie beyond the pads */
                            if (include_pad && iy >= -g.p[0] && iy < H + g.p[2] && ix >= -g.p[1] && ix < W + g.p[3]) cnt++;
                            continue;
                        }
                        double v = x->data[(nc * H + iy) * W + ix];
                        if (maxp) s = v > s ? v : s;
                        else s += v;
                        cnt++;
                    }
                y->data[(nc * g.oh + oy) * g.ow + ox] = maxp ? s : s / (double)(cnt ? cnt : 1);
            }
    return VEIL_OK;
}

veil_status ml_kernel_gemm(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen)
{
    return run_gemm(n, ins, &outs[0], err, errlen);
}

veil_status ml_kernel_matmul(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen)
{
    if (n->nin < 2 || !ins[1]) return ml_errf(err, errlen, VEIL_ERR_MALFORMED, "node '%s': MatMul needs two inputs", n->name);
    return run_matmul(n, ins[0], ins[1], &outs[0], err, errlen);
}

veil_status ml_kernel_conv(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen)
{
    return run_conv(n, ins, &outs[0], err, errlen);
}

veil_status ml_kernel_pool(const ml_node *n, const ml_tensor *const *ins, ml_tensor *outs, char *err, size_t errlen)
{
    if (n->op == ML_OP_MAX_POOL && n->nout > 1)
        return ml_errf(err, errlen, VEIL_ERR_UNSUPPORTED, "node '%s': MaxPool indices output is not supported", n->name);
    return run_pool(n, ins[0], &outs[0], err, errlen);
}
