/* AVX-512 (F, DQ) negacyclic FFT: eight complex points per pair of registers, the last three
 * stages inside each register, exact int64→double conversion by vcvtqq2pd and rounding mod 2^64 by
 * vcvtpd2qq; the passes are fft_simd.inc's. Compiled with -mavx512f -mavx512dq -mfma
 * (CMakeLists.txt); only called after CPUID says so. Plans with fewer than 64 points use the
 * portable code. */
#include <immintrin.h>
#include <stddef.h>

#include "fft_kernels.h"
#include "kernels.h"

#define FFT_ISA avx512
#define TFHE_LANES 8
#define VD __m512d
#define VI __m512i
#define VLOAD(p) _mm512_load_pd(p)
#define VLOADU(p) _mm512_loadu_pd(p)
#define VSTORE(p, v) _mm512_store_pd(p, v)
#define VADD _mm512_add_pd
#define VSUB _mm512_sub_pd
#define VMUL _mm512_mul_pd
#define VFMADD _mm512_fmadd_pd
#define VFMSUB _mm512_fmsub_pd
#define VI_LOADU(p) _mm512_loadu_si512((const void *)(p))
#define VI_STOREU(p, v) _mm512_storeu_si512((void *)(p), v)
#define VI_ADD _mm512_add_epi64
#define VI_SUB _mm512_sub_epi64
#define VI_AND _mm512_and_si512
#define VI_SRLV _mm512_srlv_epi64
#define VI_SLLV _mm512_sllv_epi64
#define VI_SRLI _mm512_srli_epi64
#define VI_SET1(x) _mm512_set1_epi64(x)
#define VI_TO_VD _mm512_cvtepi64_pd

/* round(x) mod 2^64 for eight doubles, bit for bit as veil_f64_to_torus_portable: x − 2^64·k with
 * k = round(x/2^64) is exact and lies in [−2^63, 2^63]; vcvtpd2qq rounds it to nearest even, and
 * its overflow answer for 2^63 (0x8000…) is 2^63 mod 2^64. */
static inline __m512i torus8(__m512d x)
{
    __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(0x1p-64)), _MM_FROUND_TO_NEAREST_INT);
    __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(0x1p64), x);
    return _mm512_cvt_roundpd_epi64(r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
#define VD_TO_TORUS torus8

/* The stages of distance 4, 2, 1 inside each register: the partner of lane l is lane l ^ d
 * (t = permuted v), lower lanes get v + t, upper lanes t − v (= lower − upper), then the twiddle
 * (1 on lower lanes, so their products are exact). */
typedef struct {
    __m512d s4, s2, s1;
    __m512d w4r, w4i, w2r, w2i;
} inreg;

static inline inreg inreg_consts(const veil_fft_plan *p)
{
    inreg k;
    k.s4 = _mm512_set_pd(-1, -1, -1, -1, 1, 1, 1, 1);
    k.s2 = _mm512_set_pd(-1, -1, 1, 1, -1, -1, 1, 1);
    k.s1 = _mm512_set_pd(-1, 1, -1, 1, -1, 1, -1, 1);
    const double *wr = p->tw_re, *wi = p->tw_im;
    k.w4r = _mm512_set_pd(wr[7], wr[6], wr[5], wr[4], 1, 1, 1, 1);
    k.w4i = _mm512_set_pd(wi[7], wi[6], wi[5], wi[4], 0, 0, 0, 0);
    k.w2r = _mm512_set_pd(wr[3], wr[2], 1, 1, wr[3], wr[2], 1, 1);
    k.w2i = _mm512_set_pd(wi[3], wi[2], 0, 0, wi[3], wi[2], 0, 0);
    return k;
}

#include "fft_simd.inc"

static inline cv perm4(cv v) { return (cv){_mm512_shuffle_f64x2(v.r, v.r, 0x4E), _mm512_shuffle_f64x2(v.i, v.i, 0x4E)}; }
static inline cv perm2(cv v) { return (cv){_mm512_permutex_pd(v.r, 0x4E), _mm512_permutex_pd(v.i, 0x4E)}; }
static inline cv perm1(cv v) { return (cv){_mm512_permute_pd(v.r, 0x55), _mm512_permute_pd(v.i, 0x55)}; }
static inline cv fly(cv v, cv t, __m512d s) { return (cv){_mm512_fmadd_pd(v.r, s, t.r), _mm512_fmadd_pd(v.i, s, t.i)}; }

static inline cv dif_inreg(cv v, const inreg *k)
{
    v = mul(fly(v, perm4(v), k->s4), (cv){k->w4r, k->w4i});
    v = mul(fly(v, perm2(v), k->s2), (cv){k->w2r, k->w2i});
    return fly(v, perm1(v), k->s1);
}

static inline cv dit_inreg(cv v, const inreg *k)
{
    v = fly(v, perm1(v), k->s1);
    v = mulc(v, (cv){k->w2r, k->w2i});
    v = fly(v, perm2(v), k->s2);
    v = mulc(v, (cv){k->w4r, k->w4i});
    return fly(v, perm4(v), k->s4);
}
