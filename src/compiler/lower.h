/* Lowering of a bounded, checked graph to a program (see lower.c). */
#ifndef VEIL_COMPILER_LOWER_H
#define VEIL_COMPILER_LOWER_H

#include "ir/ir.h"
#include "program.h"

typedef struct {
    int tlu_node;   /* the node whose lookup is too wide */
    int input_node; /* the graph node looked up, -1 for an internal value (a − b of a comparison) */
    unsigned bits;
} veil_lower_issue;

/* cv[i]: the value of every clear node (constants folded). Lookups wider than max_tlu_bits are
 * reported in issues (up to max_issues, *nissues counts all) and make the call return
 * VEIL_ERR_COMPILE. */
VEIL_NODISCARD veil_status veil_lower(const veil_graph *g, int64_t *const *cv, unsigned max_tlu_bits,
                                      veil_program **out, veil_lower_issue *issues, size_t max_issues,
                                      size_t *nissues);

#endif
