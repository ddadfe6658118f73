/* The largest N (as log2) among a compiled circuit's parameter sets: what a raised ceiling reached. */
#ifndef VEIL_TESTS_ML_PARAMS_H
#define VEIL_TESTS_ML_PARAMS_H

#include "check.h"
#include "veil/model.h"

static inline unsigned top_log2_N(const veil_circuit *c)
{
    unsigned top = 0;
    for (size_t j = 0; j < veil_circuit_partition_count(c); j++) {
        veil_partition_stats ps;
        CHECK_OK(veil_circuit_get_partition(c, j, &ps));
        if (ps.params.log2_N > top) top = ps.params.log2_N;
    }
    return top;
}

#endif
