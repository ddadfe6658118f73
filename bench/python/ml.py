"""Figures for the Python layer (issue 15): per built-in model and per torch model, fit, compile and
keygen seconds, the compressed evaluation-key size, the median execute latency per sample, and the
accuracy (float model, clear, simulate); then the Python layer's overhead over the C tools on one
compiled model. The models and data are the tests' (python/tests), so the figures are theirs.
Usage (in the venv python/run-tests makes): python bench/python/ml.py [--samples 3] [NAME ...]"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python", "tests"))

import test_sklearn as ts  # noqa: E402
import test_torch as tt  # noqa: E402


def line(name, fit_s, qm, compile_s, ref, clear, sim, execute):
    st = qm.fhe_circuit.statistics
    t0 = time.time()
    qm.fhe_circuit.keygen()
    keygen_s = time.time() - t0
    lat = execute()
    keys_mb = (st.get("bsk_seeded_bytes", 0) + st.get("ksk_seeded_bytes", 0)) / 1e6
    print(f"{name:24s} fit {fit_s:6.2f} s  compile {compile_s:5.2f} s  keygen {keygen_s:5.2f} s  keys {keys_mb:7.1f} MB  "
          f"execute {lat * 1e3:7.1f} ms/sample  pbs {st['pbs_count']:4d}  float {ref:.4f}  clear {clear:.4f}  "
          f"simulate {sim:.4f}", flush=True)


def median_latency(f, x, n):
    times = []
    for i in range(n):
        t0 = time.time()
        j = i % len(x)
        f(x[j:j + 1])
        times.append(time.time() - t0)
    return statistics.median(times)


def builtins(names, n):
    for cls, params, _ in ts.CASES:
        if names and cls.__name__ not in names:
            continue
        classifier = issubclass(cls, ts.S._Classifier)
        x_tr, x_te, y_tr, y_te = ts.BC if classifier else ts.DB
        score = (lambda p: float(np.mean(p == y_te))) if classifier else (lambda p: float(ts.r2(y_te, p)))
        t0 = time.time()
        m = cls(**params).fit(x_tr, y_tr)
        fit_s = time.time() - t0
        ref = score(m.float_predict(x_te)) if hasattr(m, "float_predict") else score(m.sklearn_model.predict(x_te))
        t0 = time.time()
        m.compile(x_tr)
        compile_s = time.time() - t0
        m.quantized_module_.model.seed_simulation(ts.SEED)
        clear, sim = score(m.predict(x_te)), score(m.predict(x_te, fhe="simulate"))
        line(cls.__name__, fit_s, m.quantized_module_, compile_s, ref, clear, sim,
             lambda: median_latency(lambda x: m.predict(x, fhe="execute"), x_te, n))


def torch_models(names, n):
    import torch.nn as nn
    import brevitas.nn as qnn
    from veil.ml.torch import compile_brevitas_qat_model, compile_torch_model
    bc, dg = tt.breast_cancer(), tt.digits()
    flat = [a.reshape(len(a), -1) if i < 2 else a for i, a in enumerate(dg)]
    cases = {
        "torch MLP (PTQ)": (lambda: nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(),
                                                   nn.Linear(8, 2)), bc, 60, 1e-3, compile_torch_model, {"n_bits": 8}),
        "torch CNN (PTQ)": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Flatten(),
                                                   nn.Linear(36, 10)), dg, 30, 3e-3, compile_torch_model, {}),
        "Brevitas QAT MLP": (lambda: nn.Sequential(qnn.QuantIdentity(bit_width=4, return_quant_tensor=True),
                                                    qnn.QuantLinear(64, 16, bias=True, weight_bit_width=4),
                                                    qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
                                                    qnn.QuantLinear(16, 10, bias=True, weight_bit_width=4)),
                             flat, 30, 3e-3, compile_brevitas_qat_model,
                             {"n_bits": {"model_inputs": 4, "model_outputs": 4}}),
    }
    for name, (make, (x_tr, x_te, y_tr, y_te), epochs, lr, comp, kw) in cases.items():
        if names and name not in names:
            continue
        import torch
        torch.manual_seed(tt.SEED)
        t0 = time.time()
        model = tt.fit(make(), x_tr, y_tr, epochs, lr)
        fit_s = time.time() - t0
        t0 = time.time()
        qm = comp(model, x_tr, **kw)
        compile_s = time.time() - t0
        qm.model.seed_simulation(tt.SIM_SEED)
        acc = lambda y: float(np.mean(y.argmax(1) == y_te))  # noqa: E731
        line(name, fit_s, qm, compile_s, tt.torch_acc(model, x_te, y_te), acc(qm.forward(x_te)),
             acc(qm.forward(x_te, fhe="simulate")), lambda: median_latency(lambda x: qm.forward(x, fhe="execute"), x_te, n))


def overhead(n):
    """The same committed model through veil bench models (C) and through veil.Model (Python)."""
    import veil
    binary = os.environ.get("VEIL_BINARY", os.path.join(ROOT, "build", "veil"))
    d = os.path.join(ROOT, "models", "dt_breast_cancer")
    out = subprocess.run([binary, "bench", "models", "--model", "dt_breast_cancer", "--samples", str(n), "--threads", "2"],
                         capture_output=True, text=True, check=True).stdout
    c = dict(re.findall(r"(\w+)=([0-9.e+-]+)", [l for l in out.splitlines() if "precision=partitioned" in l][0]))
    m = veil.compile(os.path.join(d, "model.onnx"), np.load(os.path.join(d, "train.npy")))
    x = np.load(os.path.join(d, "test.npy"))
    m.keygen()
    py_exec = median_latency(lambda v: m.forward(v, mode="execute"), x, n)
    py_clear = median_latency(lambda v: m.forward(v), x, 200)
    print(f"overhead (dt_breast_cancer): execute C {float(c['execute_s']):.3f} s, Python {py_exec:.3f} s per sample "
          f"(ratio {py_exec / float(c['execute_s']):.2f}); clear C {float(c['clear_ms']) * 1e3:.1f} us, "
          f"Python {py_clear * 1e6:.1f} us per call", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=3, help="encrypted samples per model (median)")
    ap.add_argument("names", nargs="*", help="models (class names or the torch names); default: all")
    a = ap.parse_args()
    builtins(a.names, a.samples)
    torch_models(a.names, a.samples)
    if not a.names:
        overhead(a.samples)


if __name__ == "__main__":
    main()
