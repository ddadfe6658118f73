#include "kernels.h"

#include <string.h>

#include "veil/core.h"

const veil_kernels *veil_kernels_get(void)
{
    static const veil_kernels *chosen;
    const veil_kernels *k = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (k) return k;
    const char *name = veil_cpu_kernel_name();
    k = strcmp(name, "avx512") == 0 ? &veil_kernels_avx512
        : strcmp(name, "avx2") == 0 ? &veil_kernels_avx2
                                    : &veil_kernels_portable;
    __atomic_store_n(&chosen, k, __ATOMIC_RELEASE);
    return k;
}

const veil_kernels *const *veil_kernels_all(void)
{
    static const veil_kernels *with512[] = {&veil_kernels_portable, &veil_kernels_avx2, &veil_kernels_avx512, NULL};
    static const veil_kernels *with2[] = {&veil_kernels_portable, &veil_kernels_avx2, NULL};
    static const veil_kernels *portable_only[] = {&veil_kernels_portable, NULL};
    unsigned f = veil_cpu_features();
    if ((f & VEIL_CPU_AVX512F) && (f & VEIL_CPU_AVX512DQ) && (f & VEIL_CPU_AVX2) && (f & VEIL_CPU_FMA)) return with512;
    if ((f & VEIL_CPU_AVX2) && (f & VEIL_CPU_FMA)) return with2;
    return portable_only;
}
