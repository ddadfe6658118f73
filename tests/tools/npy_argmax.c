/* Test helper: the argmax of each row of an (N, ...) .npy file, one per line. */
#include <stdio.h>

#include "veil/npy.h"

int main(int argc, char **argv)
{
    veil_array a;
    if (argc != 2 || veil_npy_load(argv[1], &a) != VEIL_OK || a.ndim < 1 || a.shape[0] < 1) {
        fprintf(stderr, "usage: npy_argmax FILE.npy (an array of shape (N, ...))\n");
        return 2;
    }
    int64_t k = a.size / a.shape[0];
    for (int64_t i = 0; i < a.shape[0]; i++) {
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            if (a.data[i * k + j] > a.data[i * k + best]) best = j;
        printf("%lld\n", (long long)best);
    }
    veil_array_free(&a);
    return 0;
}
