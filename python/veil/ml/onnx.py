"""compile_onnx_model with Concrete ML 1.9's names and meaning of fhe= ("disable": the quantized
model in the clear; "simulate": with the noise of the chosen parameters; "execute": encrypted).
Where veil differs: it rounds automatically by default (rounding_threshold_bits=None lets it choose,
per lookup, the widest precision that keeps the parameters at or below N = 2^13, and checks the
result against the float model), and p_error defaults to 2^-40 per lookup."""
import numpy as np

from .. import compile as _compile

_FHE = {"disable": "clear", "simulate": "simulate", "execute": "execute"}


def _mode(fhe):
    if fhe not in _FHE:
        raise ValueError(f"fhe='{fhe}': one of disable, simulate, execute")
    return _FHE[fhe]


class _Graph:
    def __init__(self, model):
        self._model = model

    def maximum_integer_bit_width(self):
        return self._model.max_bit_width()


class FHECircuit:
    """The compiled circuit, as Concrete's fhe_circuit: graph.maximum_integer_bit_width(),
    statistics, keygen(); printing it prints veil's description of the model."""

    def __init__(self, model):
        self._model = model
        self.graph = _Graph(model)

    @property
    def statistics(self):
        return self._model.statistics()

    def keygen(self, force=False, seed=None):
        self._model.keygen(seed)

    def __str__(self):
        return self._model.describe()


class QuantizedModule:
    """quantize_input -> quantized_forward(fhe=...) -> dequantize_output, or forward(fhe=...)."""

    def __init__(self, model):
        self.model = model
        self.fhe_circuit = FHECircuit(model)
        self._keys = False

    def _need_keys(self, fhe):
        if fhe == "execute" and not self._keys:
            self.model.keygen()
            self._keys = True

    def quantize_input(self, *x):
        return self.model.quantize_input(*x)

    def quantized_forward(self, *q, fhe="disable"):
        self._need_keys(fhe)
        return self.model.quantized_forward(*q, mode=_mode(fhe))

    def dequantize_output(self, q_y):
        return self.model.dequantize_output(q_y)

    def forward(self, *x, fhe="disable"):
        self._need_keys(fhe)
        return self.model.forward(*x, mode=_mode(fhe))

    def bitwidth_and_range_report(self):
        """veil's per-layer bit-widths and ranges (the table `veil info` prints)."""
        return self.model.report()

    def save(self, path):
        self.model.save(path)


def compile_onnx_model(onnx_model, inputset, n_bits=None, rounding_threshold_bits=None, p_error=None,
                       global_p_error=None, **kwargs):
    """Compile an ONNX model (path, bytes or onnx.ModelProto) on an inputset (an array, or a tuple of
    arrays for a model of several inputs). n_bits: an int or Concrete's dict
    ({"op_inputs", "op_weights", "model_inputs", "model_outputs"}); veil's default (None) is 8."""
    xs = inputset if isinstance(inputset, (tuple, list)) else (inputset,)
    xs = [np.asarray(x) for x in xs]
    m = _compile(onnx_model, *xs, n_bits=n_bits, rounding_threshold_bits=rounding_threshold_bits, p_error=p_error,
                 global_p_error=global_p_error, **kwargs)
    return QuantizedModule(m)
