/* AVX2+FMA negacyclic FFT: four complex points per pair of registers, the last two stages inside
 * each register, exact int64↔double conversions built from the 2^52 magic number; the passes are
 * fft_simd.inc's. Compiled with -mavx2 -mfma (CMakeLists.txt); only called after CPUID says so.
 * Plans with fewer than 32 points use the portable code. */
#include <immintrin.h>
#include <stddef.h>

#include "fft_kernels.h"
#include "kernels.h"

#define FFT_ISA avx2
#define TFHE_LANES 4
#define VD __m256d
#define VI __m256i
#define VLOAD(p) _mm256_load_pd(p)
#define VLOADU(p) _mm256_loadu_pd(p)
#define VSTORE(p, v) _mm256_store_pd(p, v)
#define VADD _mm256_add_pd
#define VSUB _mm256_sub_pd
#define VMUL _mm256_mul_pd
#define VFMADD _mm256_fmadd_pd
#define VFMSUB _mm256_fmsub_pd
#define VI_LOADU(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define VI_STOREU(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), v)
#define VI_ADD _mm256_add_epi64
#define VI_SUB _mm256_sub_epi64
#define VI_AND _mm256_and_si256
#define VI_SRLV _mm256_srlv_epi64
#define VI_SLLV _mm256_sllv_epi64
#define VI_SRLI _mm256_srli_epi64
#define VI_SET1(x) _mm256_set1_epi64x(x)

/* Exact int64 → double for any value: x = h·2^32 + l with l the low 32 bits and h the signed high
 * half; both convert exactly through the 2^52 magic number (h via the bias 2^31), and one FMA
 * rounds h·2^32 + l once. */
static inline __m256d i64_to_f64(__m256i x)
{
    const __m256i magic_i = _mm256_set1_epi64x(0x4330000000000000ll);
    const __m256d magic = _mm256_set1_pd(0x1p52);
    __m256i lo = _mm256_blend_epi32(magic_i, x, 0x55); /* low 32 bits into the magic mantissa */
    __m256i hi = _mm256_srli_epi64(_mm256_xor_si256(x, _mm256_set1_epi64x((long long)0x8000000000000000ull)), 32);
    __m256d lod = _mm256_sub_pd(_mm256_castsi256_pd(lo), magic);
    __m256d hid = _mm256_sub_pd(_mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(hi, magic_i)), magic),
                                _mm256_set1_pd(0x1p31));
    return _mm256_fmadd_pd(hid, _mm256_set1_pd(0x1p32), lod);
}
#define VI_TO_VD i64_to_f64

/* round(x) mod 2^64, bit for bit as the portable conversion: x = hi·2^32 + lo with
 * hi = floor(x/2^32) and lo in [0, 2^32) (all exact), then hi mod 2^32 the same way; both halves
 * convert exactly through the 2^52 magic number. */
static inline __m256i torus4(__m256d x)
{
    const __m256d two32 = _mm256_set1_pd(0x1p32), inv32 = _mm256_set1_pd(0x1p-32);
    const __m256d magic = _mm256_set1_pd(0x1p52);
    const __m256i magic_i = _mm256_castpd_si256(magic);
    __m256d hi = _mm256_floor_pd(_mm256_mul_pd(x, inv32));
    __m256d lo = _mm256_fnmadd_pd(hi, two32, x);
    __m256d hh = _mm256_floor_pd(_mm256_mul_pd(hi, inv32));
    __m256d himod = _mm256_fnmadd_pd(hh, two32, hi);
    __m256i lo_i = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(lo, magic)), magic_i);
    __m256i hi_i = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(himod, magic)), magic_i);
    return _mm256_add_epi64(_mm256_slli_epi64(hi_i, 32), lo_i);
}
#define VD_TO_TORUS torus4

/* stages of distance 2 and 1 inside each register (as in fft_avx512.c) */
typedef struct {
    __m256d s2, s1, w2r, w2i;
} inreg;

static inline inreg inreg_consts(const veil_fft_plan *p)
{
    inreg k;
    k.s2 = _mm256_set_pd(-1, -1, 1, 1);
    k.s1 = _mm256_set_pd(-1, 1, -1, 1);
    k.w2r = _mm256_set_pd(p->tw_re[3], p->tw_re[2], 1, 1);
    k.w2i = _mm256_set_pd(p->tw_im[3], p->tw_im[2], 0, 0);
    return k;
}

#include "fft_simd.inc"

static inline cv perm2(cv v) { return (cv){_mm256_permute4x64_pd(v.r, 0x4E), _mm256_permute4x64_pd(v.i, 0x4E)}; }
static inline cv perm1(cv v) { return (cv){_mm256_permute_pd(v.r, 0x5), _mm256_permute_pd(v.i, 0x5)}; }
static inline cv fly(cv v, cv t, __m256d s) { return (cv){_mm256_fmadd_pd(v.r, s, t.r), _mm256_fmadd_pd(v.i, s, t.i)}; }

static inline cv dif_inreg(cv v, const inreg *k)
{
    v = mul(fly(v, perm2(v), k->s2), (cv){k->w2r, k->w2i});
    return fly(v, perm1(v), k->s1);
}

static inline cv dit_inreg(cv v, const inreg *k)
{
    v = fly(v, perm1(v), k->s1);
    v = mulc(v, (cv){k->w2r, k->w2i});
    return fly(v, perm2(v), k->s2);
}
