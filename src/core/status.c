#include "veil/core.h"

static const char *const status_names[] = {
    [VEIL_OK] = "ok",
    [VEIL_ERR_NOMEM] = "out of memory",
    [VEIL_ERR_INVALID_ARG] = "invalid argument",
    [VEIL_ERR_IO] = "input/output error",
    [VEIL_ERR_TRUNCATED] = "truncated data",
    [VEIL_ERR_BAD_MAGIC] = "not a veil file (bad magic)",
    [VEIL_ERR_BAD_VERSION] = "unsupported format version",
    [VEIL_ERR_BAD_KIND] = "wrong kind of object",
    [VEIL_ERR_BAD_FLAGS] = "unknown flag bits",
    [VEIL_ERR_CHECKSUM] = "checksum mismatch (corrupted data)",
    [VEIL_ERR_MALFORMED] = "malformed data",
    [VEIL_ERR_PARAMS_MISMATCH] = "made for other parameters (fingerprint mismatch)",
    [VEIL_ERR_RNG] = "random number generator failure",
    [VEIL_ERR_UNSUPPORTED] = "unsupported",
    [VEIL_ERR_INSECURE] = "parameters below 128-bit security",
    [VEIL_ERR_GRAPH] = "invalid graph",
    [VEIL_ERR_COMPILE] = "graph cannot be compiled",
    [VEIL_ERR_NO_PARAMS] = "no parameters found",
    [VEIL_ERR_EVAL] = "evaluation failed",
    [VEIL_ERR_MODEL_MISMATCH] = "made for another model (model id mismatch)",
    [VEIL_ERR_PASSPHRASE] = "sealed with a passphrase: none given, or a wrong one",
    [VEIL_ERR_REMOTE] = "another process of the distributed run failed or stopped answering",
};
_Static_assert(sizeof(status_names) / sizeof(status_names[0]) == VEIL_STATUS_COUNT,
               "status_names must name every veil_status");

const char *veil_status_str(veil_status s)
{
    if ((unsigned)s >= VEIL_STATUS_COUNT || !status_names[s]) return "unknown status";
    return status_names[s];
}
