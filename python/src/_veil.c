/* veil._veil: the CPython binding of libveil's model API (include/veil/model.h). A thin layer: it
 * converts buffers (NumPy arrays, float64 / int64, C-contiguous) and raises VeilError with the
 * library's one-line message; long calls (compile, keygen, the inference loops) release the GIL.
 * Keys live in the C model object only (wiped by veil_model_free), never in Python objects.
 * The deployment objects bind include/veil/client.h and server.h: Client (the client bundle, its
 * secret key held in C), ServerModel and EvalKeys (the server side), Remote (a veil serve). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "veil/client.h"
#include "veil/compiler.h"
#include "veil/model.h"
#include "veil/server.h"

static PyObject *VeilError;

static PyObject *fail_msg(veil_status st, const char *msg)
{
    PyErr_SetString(st == VEIL_ERR_NOMEM ? PyExc_MemoryError : VeilError, msg && *msg ? msg : veil_status_str(st));
    return NULL;
}

static PyObject *fail(veil_status st)
{
    const char *msg = veil_model_last_error();
    PyErr_SetString(st == VEIL_ERR_NOMEM ? PyExc_MemoryError : VeilError,
                    msg && *msg ? msg : veil_status_str(st));
    return NULL;
}

typedef struct {
    PyObject_HEAD veil_model *m;
} ModelObject;

static void model_dealloc(ModelObject *self)
{
    veil_model_free(self->m); /* wipes the keys */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ModelType;

static PyObject *wrap(veil_model *m)
{
    ModelObject *o = PyObject_New(ModelObject, &ModelType);
    if (!o) {
        veil_model_free(m);
        return NULL;
    }
    o->m = m;
    return (PyObject *)o;
}

/* A read-only C-contiguous buffer of `count` elements of `itemsize` bytes. */
static int get_buffer(PyObject *obj, Py_buffer *b, Py_ssize_t itemsize, Py_ssize_t count, const char *what)
{
    if (PyObject_GetBuffer(obj, b, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (b->len != itemsize * count) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, %zd expected (%zd values of %zd bytes)", what, b->len,
                     itemsize * count, count, itemsize);
        PyBuffer_Release(b);
        return -1;
    }
    return 0;
}

static int opt_int(PyObject *d, const char *k, int *v)
{
    PyObject *x = PyDict_GetItemString(d, k);
    if (!x || x == Py_None) return 0;
    long l = PyLong_AsLong(x);
    if (l == -1 && PyErr_Occurred()) return -1;
    *v = (int)l;
    return 0;
}

static int opt_double(PyObject *d, const char *k, double *v)
{
    PyObject *x = PyDict_GetItemString(d, k);
    if (!x || x == Py_None) return 0;
    double f = PyFloat_AsDouble(x);
    if (f == -1 && PyErr_Occurred()) return -1;
    *v = f;
    return 0;
}

/* options: a dict of veil_model_options' fields by name (absent or None: the default) */
static int parse_options(PyObject *d, veil_model_options *o)
{
    veil_model_options_default(o);
    if (!d || d == Py_None) return 0;
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "options must be a dict");
        return -1;
    }
    int clear = 0, approx = 1;
    if (opt_int(d, "op_inputs", &o->n_bits.op_inputs) || opt_int(d, "op_weights", &o->n_bits.op_weights) ||
        opt_int(d, "model_inputs", &o->n_bits.model_inputs) || opt_int(d, "model_outputs", &o->n_bits.model_outputs) ||
        opt_int(d, "qat", &o->qat) || opt_int(d, "rounding_bits", &o->rounding_bits) ||
        opt_int(d, "rounding_approximate", &approx) || opt_double(d, "p_error", &o->p_error) ||
        opt_double(d, "global_p_error", &o->global_p_error) || opt_int(d, "single_precision", &o->single_precision) ||
        opt_int(d, "auto_rounding", &o->auto_rounding) || opt_int(d, "max_lookup_bits", &o->max_lookup_bits) ||
        opt_int(d, "max_log2_N", &o->max_log2_N) || opt_double(d, "min_agreement", &o->min_agreement) ||
        opt_int(d, "raise_log2_N", &o->raise_log2_N) || opt_double(d, "input_clip", &o->input_clip) ||
        opt_double(d, "activation_clip", &o->activation_clip) ||
        opt_int(d, "clear_inputs", &clear))
        return -1;
    o->rounding_method = approx ? VEIL_ROUNDING_APPROXIMATE : VEIL_ROUNDING_EXACT;
    o->clear_inputs = (uint32_t)clear;
    return 0;
}

/* compile(onnx: str path or bytes, inputset: float64 buffer, nsamples, sample_size, options) */
static PyObject *py_compile(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *onnx, *inputset, *opts = NULL;
    Py_ssize_t ns, ss;
    if (!PyArg_ParseTuple(args, "OOnn|O", &onnx, &inputset, &ns, &ss, &opts)) return NULL;
    if (ns < 1 || ss < 1) return PyErr_Format(PyExc_ValueError, "an inputset of %zd samples of %zd values", ns, ss);
    veil_model_options o;
    if (parse_options(opts, &o) < 0) return NULL;
    Py_buffer in;
    if (get_buffer(inputset, &in, 8, ns * ss, "inputset") < 0) return NULL;
    veil_model *m = NULL;
    veil_status st;
    if (PyUnicode_Check(onnx)) {
        const char *path = PyUnicode_AsUTF8(onnx);
        if (!path) {
            PyBuffer_Release(&in);
            return NULL;
        }
        Py_BEGIN_ALLOW_THREADS st = veil_model_compile_file(path, in.buf, (size_t)ns, (size_t)ss, &o, &m);
        Py_END_ALLOW_THREADS
    } else {
        Py_buffer ob;
        if (PyObject_GetBuffer(onnx, &ob, PyBUF_C_CONTIGUOUS) < 0) {
            PyBuffer_Release(&in);
            return NULL;
        }
        Py_BEGIN_ALLOW_THREADS st = veil_model_compile_buffer(ob.buf, (size_t)ob.len, in.buf, (size_t)ns, (size_t)ss, &o, &m);
        Py_END_ALLOW_THREADS
        PyBuffer_Release(&ob);
    }
    PyBuffer_Release(&in);
    if (st != VEIL_OK) return fail(st);
    return wrap(m);
}

static PyObject *py_load(PyObject *mod, PyObject *args)
{
    (void)mod;
    const char *dir;
    if (!PyArg_ParseTuple(args, "s", &dir)) return NULL;
    veil_model *m = NULL;
    veil_status st;
    Py_BEGIN_ALLOW_THREADS st = veil_model_load(dir, &m);
    Py_END_ALLOW_THREADS
    if (st != VEIL_OK) return fail(st);
    return wrap(m);
}

static PyObject *m_save(ModelObject *self, PyObject *args)
{
    const char *dir;
    if (!PyArg_ParseTuple(args, "s", &dir)) return NULL;
    veil_status st;
    Py_BEGIN_ALLOW_THREADS st = veil_model_save(self->m, dir);
    Py_END_ALLOW_THREADS
    if (st != VEIL_OK) return fail(st);
    Py_RETURN_NONE;
}

static PyObject *m_describe(ModelObject *self, PyObject *unused)
{
    (void)unused;
    char *d = veil_model_describe(self->m);
    if (!d) return PyErr_NoMemory();
    PyObject *s = PyUnicode_FromString(d);
    veil_free(d);
    return s;
}

static PyObject *m_compile_log(ModelObject *self, PyObject *unused)
{
    (void)unused;
    return PyUnicode_FromString(veil_model_compile_log(self->m));
}

static PyObject *m_report(ModelObject *self, PyObject *unused)
{
    (void)unused;
    const char *r = veil_model_report(self->m);
    return PyUnicode_FromString(r ? r : "");
}

static PyObject *m_max_bit_width(ModelObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLong(veil_model_max_bit_width(self->m));
}

static PyObject *shape_tuple(const int64_t *shape, int nd)
{
    PyObject *t = PyTuple_New(nd < 0 ? 0 : nd);
    for (int d = 0; t && d < nd; d++) PyTuple_SET_ITEM(t, d, PyLong_FromLongLong(shape[d]));
    return t;
}

/* [(name, shape), ...] of the inputs (which = 0) or outputs (1) */
static PyObject *io_list(ModelObject *self, int which)
{
    size_t n = which ? veil_model_output_count(self->m) : veil_model_input_count(self->m);
    PyObject *l = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; l && i < n; i++) {
        int64_t shape[VEIL_MAX_DIMS];
        int nd = which ? veil_model_output_shape_at(self->m, i, shape) : veil_model_input_shape_at(self->m, i, shape);
        const char *name = which ? veil_model_output_name(self->m, i) : veil_model_input_name(self->m, i);
        PyList_SET_ITEM(l, (Py_ssize_t)i, Py_BuildValue("(sN)", name, shape_tuple(shape, nd)));
    }
    return l;
}

static PyObject *m_inputs(ModelObject *self, PyObject *unused)
{
    (void)unused;
    return io_list(self, 0);
}

static PyObject *m_outputs(ModelObject *self, PyObject *unused)
{
    (void)unused;
    return io_list(self, 1);
}

static PyObject *m_sizes(ModelObject *self, PyObject *unused)
{
    (void)unused;
    return Py_BuildValue("(LLL)", (long long)veil_model_input_size(self->m), (long long)veil_model_output_size(self->m),
                         (long long)veil_model_quantized_output_size(self->m));
}

static PyObject *m_statistics(ModelObject *self, PyObject *unused)
{
    (void)unused;
    veil_circuit_stats s;
    veil_circuit_get_stats(veil_model_circuit(self->m), &s);
    return Py_BuildValue("{s:I,s:I,s:n,s:n,s:n,s:K,s:K,s:K,s:K,s:d,s:d,s:n}", "precision", s.precision, "lookup_bits",
                         s.lookup_bits, "pbs_count", (Py_ssize_t)s.pbs_count, "ks_count", (Py_ssize_t)s.ks_count,
                         "linear_terms", (Py_ssize_t)s.linear_terms, "bsk_bytes", (unsigned long long)s.bsk_bytes,
                         "ksk_bytes", (unsigned long long)s.ksk_bytes, "bsk_seeded_bytes",
                         (unsigned long long)s.bsk_seeded_bytes, "ksk_seeded_bytes",
                         (unsigned long long)s.ksk_seeded_bytes, "p_error", s.p_error, "global_p_error",
                         s.global_p_error, "partitions", (Py_ssize_t)s.partitions);
}

static int seed_arg(PyObject *o, uint8_t seed[VEIL_SEED_BYTES], int *have)
{
    *have = 0;
    if (!o || o == Py_None) return 0;
    Py_buffer b;
    if (PyObject_GetBuffer(o, &b, PyBUF_SIMPLE) < 0) return -1;
    if (b.len != VEIL_SEED_BYTES) {
        PyErr_Format(PyExc_ValueError, "a seed is %d bytes, not %zd", VEIL_SEED_BYTES, b.len);
        PyBuffer_Release(&b);
        return -1;
    }
    memcpy(seed, b.buf, VEIL_SEED_BYTES);
    PyBuffer_Release(&b);
    *have = 1;
    return 0;
}

/* keygen(seed=None): the OS CSPRNG unless a (test) seed is given */
static PyObject *m_keygen(ModelObject *self, PyObject *args)
{
    PyObject *so = NULL;
    if (!PyArg_ParseTuple(args, "|O", &so)) return NULL;
    uint8_t seed[VEIL_SEED_BYTES];
    int have;
    if (seed_arg(so, seed, &have) < 0) return NULL;
    veil_status st;
    Py_BEGIN_ALLOW_THREADS st = veil_model_keygen(self->m, have ? seed : NULL);
    Py_END_ALLOW_THREADS
    memset(seed, 0, sizeof seed);
    if (st != VEIL_OK) return fail(st);
    Py_RETURN_NONE;
}

static PyObject *m_seed_simulation(ModelObject *self, PyObject *args)
{
    PyObject *so;
    if (!PyArg_ParseTuple(args, "O", &so)) return NULL;
    uint8_t seed[VEIL_SEED_BYTES];
    int have;
    if (seed_arg(so, seed, &have) < 0) return NULL;
    if (!have) Py_RETURN_NONE;
    veil_status st = veil_model_seed_simulation(self->m, seed);
    if (st != VEIL_OK) return fail(st);
    Py_RETURN_NONE;
}

static int mode_of(const char *s, veil_mode *m)
{
    for (int i = 0; i < VEIL_MODE_COUNT; i++)
        if (strcmp(s, veil_mode_names[i]) == 0) {
            *m = (veil_mode)i;
            return 0;
        }
    PyErr_Format(PyExc_ValueError, "mode '%s': clear, simulate or execute", s);
    return -1;
}

typedef enum { STEP_QUANTIZE, STEP_QFORWARD, STEP_DEQUANTIZE, STEP_FORWARD, STEP_FLOAT } step_kind;

/* One step over n samples: in (n·isz values) -> bytes (n·osz values), each 8 bytes. */
static PyObject *run_step(ModelObject *self, PyObject *args, step_kind k)
{
    const char *mode_s = "clear";
    PyObject *x;
    Py_ssize_t n;
    if (k == STEP_QFORWARD || k == STEP_FORWARD) {
        if (!PyArg_ParseTuple(args, "sOn", &mode_s, &x, &n)) return NULL;
    } else if (!PyArg_ParseTuple(args, "On", &x, &n)) {
        return NULL;
    }
    veil_mode mode = VEIL_MODE_CLEAR;
    if (mode_of(mode_s, &mode) < 0) return NULL;
    if (n < 0) return PyErr_Format(PyExc_ValueError, "%zd samples", n);
    const int64_t in_sz = veil_model_input_size(self->m), out_sz = veil_model_output_size(self->m),
                  q_sz = veil_model_quantized_output_size(self->m);
    int64_t isz = k == STEP_DEQUANTIZE ? q_sz : k == STEP_QFORWARD ? in_sz : in_sz;
    int64_t osz = k == STEP_QUANTIZE ? in_sz : k == STEP_QFORWARD ? q_sz : out_sz;
    Py_buffer b;
    if (get_buffer(x, &b, 8, n * isz, "input") < 0) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * osz * 8);
    if (!out) {
        PyBuffer_Release(&b);
        return NULL;
    }
    char *o = PyBytes_AS_STRING(out);
    const char *in = b.buf;
    veil_status st = VEIL_OK;
    Py_BEGIN_ALLOW_THREADS for (Py_ssize_t i = 0; i < n && st == VEIL_OK; i++)
    {
        const void *xi = in + i * isz * 8;
        void *yi = o + i * osz * 8;
        switch (k) {
        case STEP_QUANTIZE: st = veil_model_quantize_input(self->m, xi, yi); break;
        case STEP_QFORWARD: st = veil_model_quantized_forward(self->m, mode, xi, yi); break;
        case STEP_DEQUANTIZE: st = veil_model_dequantize_output(self->m, xi, yi); break;
        case STEP_FORWARD: st = veil_model_forward(self->m, mode, xi, yi); break;
        case STEP_FLOAT: st = veil_model_float_forward(self->m, xi, yi); break;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    if (st != VEIL_OK) {
        Py_DECREF(out);
        return fail(st);
    }
    return out;
}

static PyObject *m_quantize_input(ModelObject *s, PyObject *a) { return run_step(s, a, STEP_QUANTIZE); }
static PyObject *m_quantized_forward(ModelObject *s, PyObject *a) { return run_step(s, a, STEP_QFORWARD); }
static PyObject *m_dequantize_output(ModelObject *s, PyObject *a) { return run_step(s, a, STEP_DEQUANTIZE); }
static PyObject *m_forward(ModelObject *s, PyObject *a) { return run_step(s, a, STEP_FORWARD); }
static PyObject *m_float_forward(ModelObject *s, PyObject *a) { return run_step(s, a, STEP_FLOAT); }

static PyMethodDef model_methods[] = {
    {"save", (PyCFunction)m_save, METH_VARARGS, "save(dir): DIR/client.veil and DIR/server.veil"},
    {"describe", (PyCFunction)m_describe, METH_NOARGS, "what veil info prints"},
    {"compile_log", (PyCFunction)m_compile_log, METH_NOARGS, "automatic rounding's lines"},
    {"report", (PyCFunction)m_report, METH_NOARGS, "per-layer bit-widths and ranges"},
    {"max_bit_width", (PyCFunction)m_max_bit_width, METH_NOARGS, "the widest encrypted value, in bits"},
    {"inputs", (PyCFunction)m_inputs, METH_NOARGS, "[(name, shape)] of the inputs"},
    {"outputs", (PyCFunction)m_outputs, METH_NOARGS, "[(name, shape)] of the outputs"},
    {"sizes", (PyCFunction)m_sizes, METH_NOARGS, "(input values, output values, quantized output values) per sample"},
    {"statistics", (PyCFunction)m_statistics, METH_NOARGS, "the circuit's statistics"},
    {"keygen", (PyCFunction)m_keygen, METH_VARARGS, "keygen(seed=None): keys for execute, held by the model"},
    {"seed_simulation", (PyCFunction)m_seed_simulation, METH_VARARGS, "seed_simulation(seed): simulate's noise (tests)"},
    {"quantize_input", (PyCFunction)m_quantize_input, METH_VARARGS, "quantize_input(x, n) -> int64 bytes"},
    {"quantized_forward", (PyCFunction)m_quantized_forward, METH_VARARGS, "quantized_forward(mode, q, n) -> int64 bytes"},
    {"dequantize_output", (PyCFunction)m_dequantize_output, METH_VARARGS, "dequantize_output(q, n) -> float64 bytes"},
    {"forward", (PyCFunction)m_forward, METH_VARARGS, "forward(mode, x, n) -> float64 bytes"},
    {"float_forward", (PyCFunction)m_float_forward, METH_VARARGS, "float_forward(x, n) -> float64 bytes"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "veil._veil.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_dealloc = (destructor)model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a compiled veil model (libveil's veil_model)",
    .tp_methods = model_methods,
};


/* ---- deployment: the client, the server model, evaluation keys, a remote server --------------- */
static PyObject *bytes_take(uint8_t *buf, size_t len)
{
    PyObject *b = PyBytes_FromStringAndSize((const char *)buf, (Py_ssize_t)len);
    veil_free(buf);
    return b;
}

typedef struct {
    PyObject_HEAD veil_client *c;
} ClientObject;

static void client_dealloc(ClientObject *self)
{
    veil_client_free(self->c); /* wipes the secret key */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ClientType;

static PyObject *py_client_load(PyObject *mod, PyObject *args)
{
    (void)mod;
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    veil_client *c = NULL;
    veil_status st = veil_client_load(path, &c);
    if (st != VEIL_OK) return fail_msg(st, veil_client_last_error());
    ClientObject *o = PyObject_New(ClientObject, &ClientType);
    if (!o) {
        veil_client_free(c);
        return NULL;
    }
    o->c = c;
    return (PyObject *)o;
}

static PyObject *c_keygen(ClientObject *self, PyObject *args)
{
    PyObject *so = NULL;
    if (!PyArg_ParseTuple(args, "|O", &so)) return NULL;
    uint8_t seed[VEIL_SEED_BYTES];
    int have;
    if (seed_arg(so, seed, &have) < 0) return NULL;
    veil_status st;
    Py_BEGIN_ALLOW_THREADS st = veil_client_keygen(self->c, have ? seed : NULL);
    Py_END_ALLOW_THREADS
    memset(seed, 0, sizeof seed);
    if (st != VEIL_OK) return fail_msg(st, veil_client_last_error());
    Py_RETURN_NONE;
}

static PyObject *c_keys_io(ClientObject *self, PyObject *args, int save)
{
    const char *dir;
    if (!PyArg_ParseTuple(args, "s", &dir)) return NULL;
    veil_status st;
    Py_BEGIN_ALLOW_THREADS st = save ? veil_client_save_keys(self->c, dir) : veil_client_load_keys(self->c, dir);
    Py_END_ALLOW_THREADS
    if (st != VEIL_OK) return fail_msg(st, veil_client_last_error());
    Py_RETURN_NONE;
}

static PyObject *c_save_keys(ClientObject *s, PyObject *a) { return c_keys_io(s, a, 1); }
static PyObject *c_load_keys(ClientObject *s, PyObject *a) { return c_keys_io(s, a, 0); }

static PyObject *c_eval_keys(ClientObject *self, PyObject *unused)
{
    (void)unused;
    uint8_t *buf = NULL;
    size_t len = 0;
    veil_status st = veil_client_eval_keys(self->c, &buf, &len);
    if (st != VEIL_OK) return fail_msg(st, veil_client_last_error());
    return bytes_take(buf, len);
}

static PyObject *c_info(ClientObject *self, PyObject *unused)
{
    (void)unused;
    const veil_model *m = veil_client_model(self->c);
    return Py_BuildValue("{s:s,s:i,s:i,s:L,s:L}", "model_id", veil_client_model_id(self->c), "has_secret_key",
                         veil_client_has_secret_key(self->c), "needs_eval_keys", veil_client_needs_eval_keys(self->c),
                         "input_size", (long long)veil_model_input_size(m), "output_size",
                         (long long)veil_model_output_size(m));
}

/* encrypt(x: float64 buffer of one sample) -> bytes */
static PyObject *c_encrypt(ClientObject *self, PyObject *args)
{
    PyObject *x;
    if (!PyArg_ParseTuple(args, "O", &x)) return NULL;
    Py_buffer b;
    if (get_buffer(x, &b, 8, veil_model_input_size(veil_client_model(self->c)), "input") < 0) return NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    veil_status st;
    Py_BEGIN_ALLOW_THREADS st = veil_client_quantize_encrypt_serialize(self->c, b.buf, &buf, &len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    if (st != VEIL_OK) return fail_msg(st, veil_client_last_error());
    return bytes_take(buf, len);
}

/* decrypt(answer: bytes) -> float64 bytes of one sample's outputs */
static PyObject *c_decrypt(ClientObject *self, PyObject *args)
{
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "y*", &b)) return NULL;
    const int64_t osz = veil_model_output_size(veil_client_model(self->c));
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(osz * 8));
    if (!out) {
        PyBuffer_Release(&b);
        return NULL;
    }
    veil_status st;
    Py_BEGIN_ALLOW_THREADS st = veil_client_deserialize_decrypt_dequantize(self->c, b.buf, (size_t)b.len,
                                                                          (double *)PyBytes_AS_STRING(out));
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    if (st != VEIL_OK) {
        Py_DECREF(out);
        return fail_msg(st, veil_client_last_error());
    }
    return out;
}

static PyMethodDef client_methods[] = {
    {"keygen", (PyCFunction)c_keygen, METH_VARARGS, "keygen(seed=None): secret and evaluation keys, held in C"},
    {"save_keys", (PyCFunction)c_save_keys, METH_VARARGS, "save_keys(dir): secret.key (0600), eval.keys, model_id"},
    {"load_keys", (PyCFunction)c_load_keys, METH_VARARGS, "load_keys(dir): keys of this compilation only"},
    {"eval_keys", (PyCFunction)c_eval_keys, METH_NOARGS, "the evaluation keys, compressed, to upload"},
    {"info", (PyCFunction)c_info, METH_NOARGS, "model id, key state, sizes"},
    {"encrypt", (PyCFunction)c_encrypt, METH_VARARGS, "encrypt(x): one sample -> serialized ciphertexts"},
    {"decrypt", (PyCFunction)c_decrypt, METH_VARARGS, "decrypt(answer): -> one sample's outputs (float64 bytes)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ClientType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "veil._veil.Client",
    .tp_basicsize = sizeof(ClientObject),
    .tp_dealloc = (destructor)client_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a client bundle with its keys (veil_client)",
    .tp_methods = client_methods,
};

typedef struct {
    PyObject_HEAD veil_eval_keys *ek;
} KeysObject;

static void keys_dealloc(KeysObject *self)
{
    veil_eval_keys_free(self->ek);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject KeysType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "veil._veil.EvalKeys",
    .tp_basicsize = sizeof(KeysObject),
    .tp_dealloc = (destructor)keys_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "evaluation keys loaded for a server model",
};

typedef struct {
    PyObject_HEAD veil_server_model *m;
} ServerObject;

static void server_dealloc(ServerObject *self)
{
    veil_server_model_free(self->m);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ServerType;

static PyObject *py_server_load(PyObject *mod, PyObject *args)
{
    (void)mod;
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    veil_server_model *m = NULL;
    veil_status st = veil_server_model_load(path, &m);
    if (st != VEIL_OK) return fail_msg(st, veil_server_last_error());
    ServerObject *o = PyObject_New(ServerObject, &ServerType);
    if (!o) {
        veil_server_model_free(m);
        return NULL;
    }
    o->m = m;
    return (PyObject *)o;
}

static PyObject *s_keys(ServerObject *self, PyObject *args)
{
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "y*", &b)) return NULL;
    veil_eval_keys *ek = NULL;
    veil_status st;
    Py_BEGIN_ALLOW_THREADS st = veil_server_keys_load(self->m, b.buf, (size_t)b.len, &ek);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    if (st != VEIL_OK) return fail_msg(st, veil_server_last_error());
    KeysObject *o = PyObject_New(KeysObject, &KeysType);
    if (!o) {
        veil_eval_keys_free(ek);
        return NULL;
    }
    o->ek = ek;
    return (PyObject *)o;
}

/* run(keys or None, request bytes, threads=0) -> answer bytes */
static PyObject *s_run(ServerObject *self, PyObject *args)
{
    PyObject *ko;
    Py_buffer b;
    unsigned threads = 0;
    if (!PyArg_ParseTuple(args, "Oy*|I", &ko, &b, &threads)) return NULL;
    const veil_eval_keys *ek = NULL;
    if (ko != Py_None) {
        if (!PyObject_TypeCheck(ko, &KeysType)) {
            PyBuffer_Release(&b);
            PyErr_SetString(PyExc_TypeError, "keys: EvalKeys from ServerModel.load_keys, or None");
            return NULL;
        }
        ek = ((KeysObject *)ko)->ek;
    }
    uint8_t *out = NULL;
    size_t len = 0;
    veil_status st;
    Py_BEGIN_ALLOW_THREADS st = veil_server_run(self->m, ek, b.buf, (size_t)b.len, threads, &out, &len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    if (st != VEIL_OK) return fail_msg(st, veil_server_last_error());
    return bytes_take(out, len);
}

static PyObject *s_model_id(ServerObject *self, PyObject *unused)
{
    (void)unused;
    return PyUnicode_FromString(veil_server_model_id(self->m));
}

static PyMethodDef server_methods[] = {
    {"load_keys", (PyCFunction)s_keys, METH_VARARGS, "load_keys(bytes) -> EvalKeys (checked against the model)"},
    {"run", (PyCFunction)s_run, METH_VARARGS, "run(keys, request, threads=0) -> answer"},
    {"model_id", (PyCFunction)s_model_id, METH_NOARGS, "the compilation's id"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ServerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "veil._veil.ServerModel",
    .tp_basicsize = sizeof(ServerObject),
    .tp_dealloc = (destructor)server_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a server bundle (veil_server_model)",
    .tp_methods = server_methods,
};

typedef struct {
    PyObject_HEAD veil_remote *r;
} RemoteObject;

static void remote_dealloc(RemoteObject *self)
{
    veil_remote_close(self->r);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject RemoteType;

/* remote_open(url, model, keys_dir, cacert=None, insecure=False) */
static PyObject *py_remote_open(PyObject *mod, PyObject *args)
{
    (void)mod;
    const char *url, *model, *dir, *cacert = NULL;
    int insecure = 0;
    if (!PyArg_ParseTuple(args, "sss|zp", &url, &model, &dir, &cacert, &insecure)) return NULL;
    veil_remote_options o = {.url = url, .model = model, .keys_dir = dir, .cacert = cacert, .insecure = insecure};
    veil_remote *r = NULL;
    veil_status st;
    Py_BEGIN_ALLOW_THREADS st = veil_remote_open(&o, &r);
    Py_END_ALLOW_THREADS
    if (st != VEIL_OK) return fail_msg(st, veil_client_last_error());
    RemoteObject *ro = PyObject_New(RemoteObject, &RemoteType);
    if (!ro) {
        veil_remote_close(r);
        return NULL;
    }
    ro->r = r;
    return (PyObject *)ro;
}

static PyObject *r_sizes(RemoteObject *self, PyObject *unused)
{
    (void)unused;
    const veil_model *m = veil_client_model(veil_remote_client(self->r));
    return Py_BuildValue("(LL)", (long long)veil_model_input_size(m), (long long)veil_model_output_size(m));
}

/* predict(x float64 buffer, n, concurrency=1) -> float64 bytes */
static PyObject *r_predict(RemoteObject *self, PyObject *args)
{
    PyObject *x;
    Py_ssize_t n;
    int conc = 1;
    if (!PyArg_ParseTuple(args, "On|i", &x, &n, &conc)) return NULL;
    const veil_model *m = veil_client_model(veil_remote_client(self->r));
    const int64_t isz = veil_model_input_size(m), osz = veil_model_output_size(m);
    if (n < 1) return PyErr_Format(PyExc_ValueError, "%zd samples", n);
    Py_buffer b;
    if (get_buffer(x, &b, 8, n * isz, "input") < 0) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * osz * 8));
    if (!out) {
        PyBuffer_Release(&b);
        return NULL;
    }
    veil_status st;
    Py_BEGIN_ALLOW_THREADS st = veil_remote_predict(self->r, b.buf, n, conc, (double *)PyBytes_AS_STRING(out), NULL, NULL);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    if (st != VEIL_OK) {
        Py_DECREF(out);
        return fail_msg(st, veil_client_last_error());
    }
    return out;
}

static PyMethodDef remote_methods[] = {
    {"sizes", (PyCFunction)r_sizes, METH_NOARGS, "(input values, output values) per sample"},
    {"predict", (PyCFunction)r_predict, METH_VARARGS, "predict(x, n, concurrency=1) -> float64 bytes"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RemoteType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "veil._veil.Remote",
    .tp_basicsize = sizeof(RemoteObject),
    .tp_dealloc = (destructor)remote_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a model served by veil serve (veil_remote)",
    .tp_methods = remote_methods,
};

static PyMethodDef module_methods[] = {
    {"compile", py_compile, METH_VARARGS, "compile(onnx path or bytes, inputset, nsamples, sample_size, options)"},
    {"load", py_load, METH_VARARGS, "load(dir): a model saved by save() or veil compile"},
    {"client_load", py_client_load, METH_VARARGS, "client_load(path): a client bundle (client.veil)"},
    {"server_load", py_server_load, METH_VARARGS, "server_load(path): a server bundle (server.veil)"},
    {"remote_open", py_remote_open, METH_VARARGS, "remote_open(url, model, keys_dir, cacert=None, insecure=False)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_veil", "libveil's model API", -1, module_methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__veil(void);
PyMODINIT_FUNC PyInit__veil(void)
{
    if (PyType_Ready(&ModelType) < 0 || PyType_Ready(&ClientType) < 0 || PyType_Ready(&KeysType) < 0 ||
        PyType_Ready(&ServerType) < 0 || PyType_Ready(&RemoteType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    VeilError = PyErr_NewException("veil.VeilError", PyExc_RuntimeError, NULL);
    Py_INCREF(VeilError);
    PyModule_AddObject(m, "VeilError", VeilError);
    Py_INCREF(&ModelType);
    PyModule_AddObject(m, "Model", (PyObject *)&ModelType);
    return m;
}
