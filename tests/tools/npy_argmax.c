/* Test helper: the argmax of each row of an (N, ...) .npy file, or of member NAME of a .npz, one
 * per line; with --values, every value instead (%.17g, one row per line). */
#include <stdio.h>
#include <string.h>

#include "veil/npy.h"

int main(int argc, char **argv)
{
    int values = argc > 1 && !strcmp(argv[1], "--values");
    argv += values, argc -= values;
    veil_array a = {0};
    veil_npz z = {0};
    const veil_array *p = NULL;
    if (argc == 2 && veil_npy_load(argv[1], &a) == VEIL_OK) p = &a;
    else if (argc == 3 && veil_npz_load(argv[1], &z) == VEIL_OK) p = veil_npz_get(&z, argv[2]);
    if (!p || p->ndim < 1 || p->shape[0] < 1) {
        fprintf(stderr, "usage: npy_argmax [--values] FILE.npy | FILE.npz NAME (an array of shape (N, ...))%s%s\n",
                veil_npy_last_error()[0] ? ": " : "", veil_npy_last_error());
        veil_array_free(&a);
        veil_npz_free(&z);
        return 2;
    }
    int64_t k = p->size / p->shape[0];
    for (int64_t i = 0; i < p->shape[0]; i++) {
        if (values) {
            for (int64_t j = 0; j < k; j++) printf("%s%.17g", j ? " " : "", p->data[i * k + j]);
            printf("\n");
            continue;
        }
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            if (p->data[i * k + j] > p->data[i * k + best]) best = j;
        printf("%lld\n", (long long)best);
    }
    veil_array_free(&a);
    veil_npz_free(&z);
    return 0;
}
