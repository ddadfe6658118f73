/* Each check of the compiler: the status, the one-line summary, and the listing with ^^^ under
 * the guilty node followed by Concrete's wording. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "veil/compiler.h"

#define SH(...) ((int64_t[]){__VA_ARGS__})

static veil_graph *G(void)
{
    veil_graph *g;
    if (veil_graph_new(&g) != VEIL_OK) exit(1);
    return g;
}

/* The line following the listing line that starts with `node_line`, or "" */
static const char *line_after(const char *msg, const char *node_line, char *buf, size_t cap)
{
    buf[0] = 0;
    size_t len = strlen(node_line);
    for (const char *l = msg; l && *l;) {
        const char *nl = strchr(l, '\n');
        if (strncmp(l, node_line, len) == 0 && nl) {
            const char *e = strchr(nl + 1, '\n');
            size_t n = e ? (size_t)(e - nl - 1) : strlen(nl + 1);
            if (n >= cap) n = cap - 1;
            memcpy(buf, nl + 1, n);
            buf[n] = 0;
            return buf;
        }
        l = nl ? nl + 1 : NULL;
    }
    return buf;
}

static veil_status compile1(veil_graph *g, const int64_t *lo, const int64_t *hi, const veil_compile_config *cfg)
{
    size_t nin = veil_graph_input_count(g);
    const int64_t *set[16];
    int64_t store[2][8][64];
    for (size_t i = 0; i < nin; i++) {
        int64_t shape[VEIL_MAX_DIMS], size = 1;
        int nd = veil_graph_shape(g, veil_graph_input_node(g, i), shape);
        for (int d = 0; d < nd; d++) size *= shape[d];
        for (int64_t e = 0; e < size; e++) store[0][i][e] = lo[i], store[1][i][e] = hi[i];
        set[i] = store[0][i];
        set[nin + i] = store[1][i];
    }
    veil_circuit *c = NULL;
    veil_compile_config d;
    veil_compile_config_default(&d);
    veil_status st = veil_compile(g, set, 2, cfg ? cfg : &d, &c);
    veil_circuit_free(c);
    return st;
}

#define EXPECT_LINE(msg, node_line, want)                                                                     \
    do {                                                                                                       \
        char b_[512];                                                                                          \
        const char *got_ = line_after((msg), (node_line), b_, sizeof b_);                                      \
        CHECK(strcmp(got_, (want)) == 0, "under '%s':\n  got  '%s'\n  want '%s'\nfull message:\n%s", (node_line), \
              got_, (want), (msg));                                                                            \
    } while (0)

int main(void)
{
    veil_graph *g;
    int x, y;
    const char *m;

    /* a 17-bit value into a lookup: both nodes marked */
    g = G();
    x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 0, NULL);
    CHECK_OK(veil_graph_output(g, veil_graph_relu(g, x)));
    CHECK(compile1(g, SH(0), SH(100000), NULL) == VEIL_ERR_COMPILE, "17-bit lookup accepted");
    m = veil_compiler_last_error();
    CHECK(strncmp(m, "node %0: this 17-bit value is used as an input to a table lookup, but only up to 16-bit table "
                     "lookups are supported\n", 110) == 0, "summary: %s", m);
    EXPECT_LINE(m, "%0 = x", "^^^^^^ this 17-bit value is used as an input to a table lookup");
    EXPECT_LINE(m, "%1 = relu(%0)", "^^^^^^^^^^^^^ but only up to 16-bit table lookups are supported");
    CHECK(strstr(m, "%0 = x               # EncryptedScalar<uint17>        ∈ [0, 100000]\n") != NULL, "listing: %s", m);
    veil_graph_free(g);

    /* an internal 17-bit value (the difference of two 16-bit values): the comparison is marked */
    g = G();
    x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 0, NULL);
    y = veil_graph_input(g, "y", VEIL_ENCRYPTED, 0, NULL);
    CHECK_OK(veil_graph_output(g, veil_graph_less(g, x, y)));
    CHECK(compile1(g, SH(0, 0), SH(65535, 65535), NULL) == VEIL_ERR_COMPILE, "17-bit comparison accepted");
    m = veil_compiler_last_error();
    EXPECT_LINE(m, "%2 = less(%0, %1)", "^^^^^^^^^^^^^^^^^ this 17-bit value is used as an input to a table lookup");
    CHECK(strstr(m, "\n                  but only up to 16-bit table lookups are supported\n") != NULL, "%s", m);
    veil_graph_free(g);

    /* a table too short for its input's type */
    g = G();
    x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 0, NULL);
    CHECK_OK(veil_graph_output(g, veil_graph_table(g, x, 4, SH(1, 2, 3, 0))));
    CHECK(compile1(g, SH(0), SH(3), NULL) == VEIL_OK, "a 4-entry table on uint2 must compile");
    CHECK(compile1(g, SH(0), SH(5), NULL) == VEIL_ERR_EVAL, "index 5 of a 4-entry table must fail on the inputset");
    m = veil_compiler_last_error();
    EXPECT_LINE(m, "%1 = tlu(%0, table=[1 2 3 0])",
                "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ this node fails on inputset sample 1");
    veil_graph_free(g);
    g = G();
    x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 0, NULL);
    CHECK_OK(veil_graph_output(g, veil_graph_table(g, x, 6, SH(1, 2, 3, 0, 0, 0))));
    CHECK(compile1(g, SH(0), SH(5), NULL) == VEIL_ERR_COMPILE, "a 6-entry table on uint3 must be rejected");
    m = veil_compiler_last_error();
    EXPECT_LINE(m, "%1 = tlu(%0, table=[1 2 3 0 0 0])",
                "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ this table of 6 entries cannot be looked up with a uint3 value");
    veil_graph_free(g);

    /* a clear output */
    g = G();
    x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 0, NULL);
    CHECK_OK(veil_graph_output(g, x));
    CHECK_OK(veil_graph_output(g, veil_graph_scalar(g, 3)));
    CHECK(compile1(g, SH(0), SH(3), NULL) == VEIL_ERR_COMPILE, "clear output accepted");
    m = veil_compiler_last_error();
    EXPECT_LINE(m, "%1 = 3", "^^^^^^ this clear value is returned");
    veil_graph_free(g);

    /* encrypted convolution weights */
    g = G();
    x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 4, SH(1, 1, 2, 2));
    y = veil_graph_input(g, "w", VEIL_ENCRYPTED, 4, SH(1, 1, 1, 1));
    CHECK_OK(veil_graph_output(g, veil_graph_conv2d(g, x, y, -1, NULL)));
    CHECK(compile1(g, SH(0, 0), SH(3, 3), NULL) == VEIL_ERR_COMPILE, "encrypted weights accepted");
    m = veil_compiler_last_error();
    CHECK(strstr(m, "^ this convolution has encrypted weights or bias\n") != NULL, "%s", m);
    veil_graph_free(g);

    /* no parameters: a 15-bit lookup at 2^-40 */
    g = G();
    x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 0, NULL);
    CHECK_OK(veil_graph_output(g, veil_graph_relu(g, x)));
    CHECK(compile1(g, SH(0), SH(30000), NULL) == VEIL_ERR_NO_PARAMS, "15-bit lookup found parameters");
    m = veil_compiler_last_error();
    EXPECT_LINE(m, "%1 = relu(%0)",
                "^^^^^^^^^^^^^ no 128-bit parameters give 15-bit table lookups with p_error 9.09e-13");
    veil_graph_free(g);

    /* given parameters too small for the circuit */
    g = G();
    x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 0, NULL);
    CHECK_OK(veil_graph_output(g, veil_graph_relu(g, x)));
    veil_params c1;
    CHECK_OK(veil_params_named("C1", &c1));
    veil_compile_config cfg;
    veil_compile_config_default(&cfg);
    cfg.params = &c1;
    CHECK(compile1(g, SH(0), SH(15), &cfg) == VEIL_ERR_NO_PARAMS, "C1 accepted for 4-bit lookups");
    m = veil_compiler_last_error();
    CHECK(strncmp(m, "parameters C1 do not meet this circuit: 4-bit precision", 55) == 0, "%s", m);
    veil_graph_free(g);

    /* builder errors are sticky and name the problem */
    g = G();
    x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 1, SH(2));
    y = veil_graph_input(g, "y", VEIL_ENCRYPTED, 1, SH(3));
    int s = veil_graph_add(g, x, y);
    CHECK(s == -1 && veil_graph_status(g) == VEIL_ERR_GRAPH, "bad broadcast accepted");
    CHECK(strcmp(veil_graph_last_error(g), "add: shapes (2,) and (3,) cannot be broadcast together") == 0, "%s",
          veil_graph_last_error(g));
    CHECK(veil_graph_relu(g, s) == -1, "a -1 operand must give -1");
    CHECK(veil_graph_output(g, x) == VEIL_ERR_GRAPH, "output after an error");
    CHECK(compile1(g, SH(0, 0), SH(1, 1), NULL) == VEIL_ERR_GRAPH, "compile after an error");
    CHECK(strstr(veil_compiler_last_error(), "cannot be broadcast") != NULL, "%s", veil_compiler_last_error());
    veil_graph_free(g);

    g = G();
    x = veil_graph_input(g, "x", VEIL_ENCRYPTED, 2, SH(2, 3));
    CHECK(veil_graph_matmul(g, x, veil_graph_constant(g, 2, SH(2, 2), SH(1, 2, 3, 4))) == -1, "misaligned matmul");
    CHECK(strcmp(veil_graph_last_error(g), "matmul: shapes (2, 3) and (2, 2) are not aligned (3 != 2)") == 0, "%s",
          veil_graph_last_error(g));
    veil_graph_free(g);
    return check_done("test_errors");
}
