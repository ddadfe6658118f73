"""compile_torch_model and compile_brevitas_qat_model with Concrete ML 1.9's names: the torch model is
exported to ONNX in a temporary directory (torch.onnx.export, opset 17; Brevitas's QONNX export for
quantization-aware models) and compiled by veil's ONNX importer, as veil.ml.compile_onnx_model does.

Where veil differs from Concrete ML: rounding_threshold_bits=None lets veil round automatically (per
lookup, the widest precision that keeps the parameters at or below N = 2^13; auto_rounding=False
turns it off), p_error defaults to 2^-40 per lookup, and configuration, artifacts, show_mlir,
reduce_sum_copy and device are accepted for compatibility and ignored (veil has no MLIR and runs on
the CPU)."""
import contextlib
import io
import os
import tempfile
import warnings

import numpy as np

from .onnx import compile_onnx_model

_IGNORED = ("configuration", "artifacts", "show_mlir", "verbose", "reduce_sum_copy", "device")


def _arrays(inputset):
    """The inputset as a list of float arrays, one per model input (torch tensors or NumPy arrays)."""
    xs = list(inputset) if isinstance(inputset, (tuple, list)) else [inputset]
    out = []
    for x in xs:
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        out.append(np.asarray(x, dtype=np.float32))
    if not out or any(x.ndim == 0 or len(x) == 0 for x in out):
        raise ValueError("inputset: one non-empty array per model input, samples along the first axis")
    if any(len(x) != len(out[0]) for x in out):
        raise ValueError("inputset: every input needs the same number of samples")
    return out


def _clear_inputs(status, n):
    """Concrete's inputs_encryption_status (a list of "encrypted"/"clear") as veil's input indices."""
    if status is None:
        return ()
    status = list(status)
    if len(status) != n:
        raise ValueError(f"inputs_encryption_status: {len(status)} entries for a model of {n} inputs")
    bad = [s for s in status if s not in ("encrypted", "clear")]
    if bad:
        raise ValueError(f"inputs_encryption_status: '{bad[0]}' is neither 'encrypted' nor 'clear'")
    if all(s == "clear" for s in status):
        raise ValueError("inputs_encryption_status: at least one input must be encrypted")
    return tuple(i for i, s in enumerate(status) if s == "clear")


def _names(model, xs):
    import torch
    with torch.no_grad():
        y = model(*[torch.tensor(x[:1]) for x in xs])
    n_out = len(y) if isinstance(y, (tuple, list)) else 1
    ins = ["x"] if len(xs) == 1 else [f"input_{i}" for i in range(len(xs))]
    outs = ["y"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]
    return ins, outs


def _export_torch(model, xs, path):
    import torch
    ins, outs = _names(model, xs)
    axes = {n: {0: "batch"} for n in ins + outs}
    args = tuple(torch.tensor(x[:1]) for x in xs)
    torch.onnx.export(model, args if len(args) > 1 else args[0], path, input_names=ins, output_names=outs,
                      dynamic_axes=axes, opset_version=17, dynamo=False)


def _export_qonnx(model, xs, path):
    import torch
    from brevitas.export import export_qonnx
    args = tuple(torch.tensor(x[:1]) for x in xs)
    export_qonnx(model, args if len(args) > 1 else args[0], export_path=path)


@contextlib.contextmanager
def _quiet():
    """The exporters' progress lines and deprecation warnings, kept off the user's terminal."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _compile(export, model, inputset, qat, n_bits, rounding_threshold_bits, p_error, global_p_error,
             inputs_encryption_status, output_onnx_file, kwargs):
    for k in _IGNORED:
        kwargs.pop(k, None)
    xs = _arrays(inputset)
    clear = _clear_inputs(inputs_encryption_status, len(xs))
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with tempfile.TemporaryDirectory(prefix="veil-export-") as d:
            path = os.path.join(d, "model.onnx")
            with _quiet():
                export(model, xs, path)
            if output_onnx_file is not None:
                with open(path, "rb") as src, open(output_onnx_file, "wb") as dst:
                    dst.write(src.read())
            qm = compile_onnx_model(path, tuple(xs), n_bits=n_bits, rounding_threshold_bits=rounding_threshold_bits,
                                    p_error=p_error, global_p_error=global_p_error, qat=qat, clear_inputs=clear,
                                    **kwargs)
    finally:
        model.train(was_training)
    qm.torch_model = model
    return qm


def compile_torch_model(torch_model, torch_inputset, import_qat=False, configuration=None, artifacts=None,
                        show_mlir=False, n_bits=8, rounding_threshold_bits=None, p_error=None, global_p_error=None,
                        verbose=False, inputs_encryption_status=None, reduce_sum_copy=False, device="cpu",
                        **kwargs):
    """Compile a float torch.nn.Module: post-training quantization at n_bits (an int, or Concrete's dict
    {"model_inputs", "op_inputs", "op_weights", "model_outputs"}) calibrated on torch_inputset (a
    tensor or array, or a tuple of them for a model of several inputs). Returns a QuantizedModule."""
    return _compile(_export_torch, torch_model, torch_inputset, bool(import_qat), n_bits, rounding_threshold_bits,
                    p_error, global_p_error, inputs_encryption_status, None, kwargs)


def compile_brevitas_qat_model(torch_model, torch_inputset, n_bits=None, configuration=None, artifacts=None,
                               show_mlir=False, rounding_threshold_bits=None, p_error=None, global_p_error=None,
                               output_onnx_file=None, verbose=False, inputs_encryption_status=None,
                               reduce_sum_copy=False, device="cpu", **kwargs):
    """Compile a quantization-aware Brevitas model: its own quantizers set the bit-widths of inputs,
    weights and activations (exported as QONNX Quant nodes); n_bits, as in Concrete ML, may give
    {"model_inputs": b, "model_outputs": b} for the model's input and output quantization.
    output_onnx_file keeps a copy of the exported QONNX model."""
    return _compile(_export_qonnx, torch_model, torch_inputset, True, n_bits, rounding_threshold_bits, p_error,
                    global_p_error, inputs_encryption_status, output_onnx_file, kwargs)
