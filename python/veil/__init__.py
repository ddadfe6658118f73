"""veil from Python: a thin layer over libveil (the C library stays the product).

    import veil
    m = veil.compile("model.onnx", X_train)            # automatic rounding, p_error 2^-40
    y = m.forward(X_test, mode="simulate")              # or "clear", "execute" (after m.keygen())
    m.save("bundle")                                    # client.veil + server.veil, as `veil compile`

The Concrete-ML-style entry points are in veil.ml (compile_onnx_model). Errors raise VeilError with
veil's one-line message.
"""
import numpy as np

from . import _veil
from ._veil import VeilError

__all__ = ["compile", "load", "Model", "VeilError"]

_MODES = ("clear", "simulate", "execute")


def _options(n_bits=None, rounding_threshold_bits=None, p_error=None, global_p_error=None, qat=False,
             auto_rounding=True, max_log2_n=None, raise_log2_n=None, min_agreement=None, clear_inputs=(),
             clip_inputs=None, clip_values=None):
    o = {}
    if isinstance(n_bits, int):
        o["op_inputs"] = o["op_weights"] = n_bits
    elif isinstance(n_bits, dict):
        for k in n_bits:
            if k not in ("op_inputs", "op_weights", "model_inputs", "model_outputs", "op_leaves"):
                raise ValueError(f"n_bits: unknown key '{k}'")
        o["op_inputs"] = n_bits.get("op_inputs")
        o["op_weights"] = n_bits.get("op_weights", n_bits.get("op_leaves"))
        o["model_inputs"] = n_bits.get("model_inputs")
        o["model_outputs"] = n_bits.get("model_outputs")
    elif n_bits is not None:
        raise TypeError("n_bits: an int or a dict")
    if rounding_threshold_bits is not None:
        if isinstance(rounding_threshold_bits, dict):
            o["rounding_bits"] = rounding_threshold_bits.get("n_bits")
            o["rounding_approximate"] = int(rounding_threshold_bits.get("method", "approximate").lower() != "exact")
        else:
            o["rounding_bits"] = int(rounding_threshold_bits)
    if p_error is not None:
        o["p_error"] = float(p_error)
    if global_p_error is not None:
        o["global_p_error"] = float(global_p_error)
    o["qat"] = int(bool(qat))
    o["auto_rounding"] = int(bool(auto_rounding))
    if max_log2_n is not None:
        o["max_log2_N"] = int(max_log2_n)
    if raise_log2_n is not None:
        o["raise_log2_N"] = int(raise_log2_n)
    if min_agreement is not None:
        o["min_agreement"] = float(min_agreement)
    if clip_inputs is not None:
        o["input_clip"] = float(clip_inputs)
    if clip_values is not None:
        o["activation_clip"] = float(clip_values)
    mask = 0
    for i in clear_inputs:
        mask |= 1 << int(i)
    o["clear_inputs"] = mask
    return o


class Model:
    """A compiled model (libveil's veil_model): inputs and outputs as NumPy arrays, one sample per
    row of each input."""

    def __init__(self, native):
        self._m = native
        self.inputs = native.inputs()    # [(name, shape)]
        self.outputs = native.outputs()  # [(name, shape)]
        self._isz, self._osz, self._qsz = native.sizes()

    # ---- arrays in and out ----
    def _pack(self, xs, dtype):
        if len(xs) != len(self.inputs):
            raise ValueError(f"{len(xs)} inputs given, the model takes {len(self.inputs)}")
        cols, n = [], None
        for x, (name, shape) in zip(xs, self.inputs):
            a = np.asarray(x, dtype=dtype)
            per = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            if a.ndim == len(shape) - 1 or a.size == per and a.ndim != len(shape):
                a = a.reshape(1, -1)
            a = a.reshape(a.shape[0], -1)
            if a.shape[1] != per:
                raise ValueError(f"input '{name}': {a.shape[1]} values per sample, {per} expected (shape {shape})")
            if n is not None and a.shape[0] != n:
                raise ValueError(f"input '{name}': {a.shape[0]} samples, the others have {n}")
            n = a.shape[0]
            cols.append(a)
        return np.ascontiguousarray(np.concatenate(cols, axis=1)), n

    def _unpack_inputs(self, flat, n):
        out, k = [], 0
        for name, shape in self.inputs:
            per = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            out.append(flat[:, k:k + per].reshape((n,) + tuple(shape[1:])))
            k += per
        return out

    def _unpack_outputs(self, flat, n):
        flat = flat.reshape(n, -1)
        out, k = [], 0
        for name, shape in self.outputs:
            per = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            out.append(flat[:, k:k + per].reshape((n,) + tuple(shape[1:])))
            k += per
        return out[0] if len(out) == 1 else tuple(out)

    @staticmethod
    def _mode(mode):
        if mode not in _MODES:
            raise ValueError(f"mode '{mode}': one of {', '.join(_MODES)}")
        return mode

    # ---- the three steps, and all of them ----
    def quantize_input(self, *x):
        flat, n = self._pack(x, np.float64)
        q = np.frombuffer(self._m.quantize_input(flat, n), dtype=np.int64).reshape(n, -1)
        qs = self._unpack_inputs(q, n)
        return qs[0] if len(qs) == 1 else tuple(qs)

    def quantized_forward(self, *q, mode="clear"):
        flat, n = self._pack(q, np.int64)
        return np.frombuffer(self._m.quantized_forward(self._mode(mode), flat, n), dtype=np.int64).reshape(n, -1)

    def dequantize_output(self, q_out):
        q = np.ascontiguousarray(np.asarray(q_out, dtype=np.int64).reshape(-1, self._qsz))
        n = q.shape[0]
        return self._unpack_outputs(np.frombuffer(self._m.dequantize_output(q, n), dtype=np.float64), n)

    def forward(self, *x, mode="clear"):
        flat, n = self._pack(x, np.float64)
        return self._unpack_outputs(np.frombuffer(self._m.forward(self._mode(mode), flat, n), dtype=np.float64), n)

    def float_forward(self, *x):
        flat, n = self._pack(x, np.float64)
        return self._unpack_outputs(np.frombuffer(self._m.float_forward(flat, n), dtype=np.float64), n)

    # ---- keys, files, reports ----
    def keygen(self, seed=None):
        """Secret and evaluation keys for mode "execute", held by the C model (never by Python
        objects) and wiped when it is freed; seed (16 bytes) is for tests only."""
        self._m.keygen(seed)

    def seed_simulation(self, seed):
        self._m.seed_simulation(seed)

    def save(self, path):
        self._m.save(str(path))

    def describe(self):
        return self._m.describe()

    def report(self):
        """Per-layer bit-widths and ranges, as `veil info` prints them."""
        return self._m.report()

    def compile_log(self):
        return self._m.compile_log()

    def max_bit_width(self):
        return self._m.max_bit_width()

    def statistics(self):
        return self._m.statistics()


def compile(onnx, *inputset, **options):
    """Compile an ONNX model (a path, the bytes of one, or an onnx.ModelProto) on an inputset (one
    array per model input, samples along the first axis). Options: n_bits, rounding_threshold_bits,
    p_error, global_p_error, qat, auto_rounding, max_log2_n, raise_log2_n (when the compiled model
    agrees with the float one on less than min_agreement, default 0.98, of the inputset: compile
    again with the ceiling N <= 2^max_log2_n one step higher, up to 2^raise_log2_n), min_agreement,
    clear_inputs (indices), clip_inputs and clip_values (percentile calibration of the model inputs'
    quantizers and of the values each lookup produces, in [0.9, 1], 1 for min to max; default
    automatic: min to max unless a rounded model misses min_agreement, then the best of a few
    percentiles, named in compile_log())."""
    if hasattr(onnx, "SerializeToString"):
        onnx = onnx.SerializeToString()
    elif not isinstance(onnx, (bytes, bytearray, memoryview)):
        onnx = str(onnx)
    xs = [np.asarray(x, dtype=np.float64) for x in inputset]
    if not xs:
        raise ValueError("an inputset is needed: one array per model input")
    n = xs[0].shape[0]
    for x in xs:
        if x.shape[0] != n:
            raise ValueError("every inputset array needs the same number of samples")
    flat = np.ascontiguousarray(np.concatenate([x.reshape(n, -1) for x in xs], axis=1))
    return Model(_veil.compile(onnx, flat, n, flat.shape[1], _options(**options)))


def load(path):
    """A model saved by Model.save or `veil compile` (DIR/client.veil and DIR/server.veil)."""
    return Model(_veil.load(str(path)))
