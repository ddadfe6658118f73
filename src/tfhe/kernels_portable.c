#include "kernels.h"

#include <stddef.h>

#define SUFFIX portable
#define KNAME "portable"
#include "kernels_impl.inc"
