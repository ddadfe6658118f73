#include "fft_kernels.h"
#include "kernels.h"

#include <stddef.h>
#include <string.h>

#define SUFFIX portable
#define KNAME "portable"
#include "kernels_impl.inc"
