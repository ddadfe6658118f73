/* ONNX-ML tree ensembles (TreeEnsembleClassifier / TreeEnsembleRegressor): the parsed ensemble, its
 * float evaluation, and the matrices of its GEMM form. Internal to src/ml/. */
#ifndef VEIL_ML_TREE_H
#define VEIL_ML_TREE_H

#include "ml.h"

enum { ML_TREE_LEAF, ML_TREE_LEQ, ML_TREE_LT, ML_TREE_GTE, ML_TREE_GT };

typedef struct {
    int64_t n;        /* nodes of every tree */
    int64_t *feature; /* per node; internal nodes only */
    int64_t *t, *f;   /* per node: index of its true and false child (-1 for a leaf) */
    double *value;    /* threshold */
    uint8_t *mode;    /* ML_TREE_* */
    int64_t ntrees, *roots;
    int64_t nw, *w_node, *w_target; /* leaf weights: node index, target (class) */
    double *w;                       /* weight (divided by the tree count for AVERAGE) */
    int64_t ntargets;                /* scores summed over the trees */
    double *base;                    /* ntargets base values, or NULL */
    int post, binary;                /* ML_POST_*, ML_BINARY_* */
    int64_t nlabels;                 /* classifier: class labels */
    double *labels;
    int64_t nfeatures; /* the largest feature index read, plus one */
} ml_trees;

/* Parses node n (a TreeEnsemble* or TreeScores node holding its attributes); unsupported modes
 * and aggregates are refused by name. */
veil_status ml_trees_parse(const ml_node *n, ml_trees *t, char *err, size_t errlen);
void ml_trees_free(ml_trees *t);
/* Raw scores (sum over the trees of the reached leaves' weights, no base values) of one sample. */
void ml_trees_eval(const ml_trees *t, const double *x, double *scores);

#endif
