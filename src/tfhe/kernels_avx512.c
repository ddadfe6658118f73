/* Compiled with -mavx512f -mavx512dq -mfma (CMakeLists.txt); only called after CPUID says so. */
#include "kernels.h"

#include <stddef.h>
#include <string.h>

#define SUFFIX avx512
#define KNAME "avx512"
#include "kernels_impl.inc"
