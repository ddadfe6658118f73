#define _GNU_SOURCE
#include <cpuid.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "veil/core.h"

static unsigned features;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

/* What the CPU and the OS support; which kernels use it is src/tfhe/kernels.c's business. */
static void detect(void)
{
    unsigned a, b, c, d;
    unsigned f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return;
    uint64_t xcr0 = xgetbv0();
    int ymm_ok = (xcr0 & 6) == 6, zmm_ok = (xcr0 & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    if (ymm_ok && ((b >> 5) & 1)) f |= VEIL_CPU_AVX2;
    if (ymm_ok && fma) f |= VEIL_CPU_FMA;
    if (zmm_ok && ((b >> 16) & 1)) f |= VEIL_CPU_AVX512F;
    if (zmm_ok && ((b >> 17) & 1)) f |= VEIL_CPU_AVX512DQ;
    if (zmm_ok && ((b >> 31) & 1)) f |= VEIL_CPU_AVX512VL;
    features = f;
}

unsigned veil_cpu_features(void)
{
    pthread_once(&once, detect);
    return features;
}

/* VEIL_THREADS when set (1..1024), else the CPUs this process may run on (its affinity: what
 * taskset, cgroups or mpirun's binding leave it), else the online ones. Read once. */
static unsigned cpus;
static pthread_once_t cpus_once = PTHREAD_ONCE_INIT;

static void count_cpus(void)
{
    const char *env = getenv("VEIL_THREADS");
    char *end;
    long v = env && *env ? strtol(env, &end, 10) : 0;
    if (env && *env && *end == 0 && v >= 1 && v <= 1024) {
        cpus = (unsigned)v;
        return;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) {
        cpus = (unsigned)CPU_COUNT(&set);
        return;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpus = n > 0 ? (unsigned)n : 1;
}

unsigned veil_cpu_count(void)
{
    pthread_once(&cpus_once, count_cpus);
    return cpus;
}
