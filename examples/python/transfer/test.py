"""Accuracy of both compiled models over the test set, Concrete ML's loop: quantize_input ->
quantized_forward(fhe="simulate") -> dequantize_output (FHE's noise included, no encryption).
Usage: python test.py [--workdir DIR] [--limit N]"""
import argparse

import numpy as np

import common


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default="work")
    ap.add_argument("--limit", type=int, default=0, help="test samples (0: all)")
    a = ap.parse_args()
    models = common.compile_both(a.workdir)
    _, x_te, _, y_te = common.data()
    if a.limit:
        x_te, y_te = x_te[:a.limit], y_te[:a.limit]
    for name, xs in (("source", (x_te,)), ("target", common.halves(x_te))):
        qm = models[name]
        correct = 0
        for i in range(len(y_te)):
            q = qm.quantize_input(*[x[i:i + 1] for x in xs])
            q = q if isinstance(q, tuple) else (q,)
            y = qm.dequantize_output(qm.quantized_forward(*q, fhe="simulate"))
            correct += int(np.argmax(y) == y_te[i])
        print(f"{name}: simulated accuracy {correct / len(y_te):.4f} on {len(y_te)} test samples", flush=True)


if __name__ == "__main__":
    main()
