/* veil info DIR: what a compiled model is (shapes, quantizers, parameters, statistics), its
 * per-layer bit-widths and ranges, and the graph of its circuit. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "veil/model.h"

int veil_cmd_info(int argc, char **argv)
{
    if (argc != 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        printf("usage: veil info DIR\n"
               "  prints the model in DIR (client.veil, server.veil): shapes and quantizers, parameters,\n"
               "  statistics, per-layer bit-widths and ranges, and the circuit's graph\n");
        return argc == 1 ? 0 : 2;
    }
    veil_model *m = NULL;
    if (veil_model_load(argv[0], &m) != VEIL_OK) {
        fprintf(stderr, "veil info: %s\n", veil_model_last_error());
        return 1;
    }
    char *d = veil_model_describe(m);
    printf("model %s\n%s\nper-layer bit-widths and ranges:\n%s\ngraph:\n%s", argv[0], d ? d : "",
           veil_model_report(m), veil_circuit_format(veil_model_circuit(m)));
    veil_free(d);
    veil_model_free(m);
    return 0;
}
