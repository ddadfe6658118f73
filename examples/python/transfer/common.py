"""The two models of the application, their data and their training (shared by server.py, test.py
and client.py). Data: scikit-learn's digits (8x8 images, offline). The source model reads a whole
image; the target model reads it as two inputs, the top and the bottom half (two parties, or two
sensors), both quantization-aware networks trained with Brevitas at 4 bits."""
import os

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 7
N_BITS = {"model_inputs": 4, "model_outputs": 4}


def data():
    """(x_train, x_test, y_train, y_test): images as 64 values in [0, 1]."""
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return train_test_split(x, d.target, test_size=0.3, random_state=SEED, stratify=d.target)


def halves(x):
    return x[:, :32], x[:, 32:]


class Source(nn.Module):
    def __init__(self):
        super().__init__()
        import brevitas.nn as qnn
        self.net = nn.Sequential(qnn.QuantIdentity(bit_width=4, return_quant_tensor=True),
                                 qnn.QuantLinear(64, 32, bias=True, weight_bit_width=4),
                                 qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
                                 qnn.QuantLinear(32, 10, bias=True, weight_bit_width=4))

    def forward(self, x):
        return self.net(x)


class Target(nn.Module):
    """Two inputs: one input quantizer for both (equal scales, so the halves join exactly)."""

    def __init__(self):
        super().__init__()
        import brevitas.nn as qnn
        self.q_in = qnn.QuantIdentity(bit_width=4)
        self.fc1 = qnn.QuantLinear(64, 24, bias=True, weight_bit_width=4)
        self.act = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(24, 10, bias=True, weight_bit_width=4)

    def forward(self, top, bottom):
        x = torch.cat([self.q_in(top), self.q_in(bottom)], dim=1)
        return self.fc2(self.act(self.fc1(x)))


def train(model, xs, y, epochs):
    torch.manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xs = [torch.tensor(x) for x in xs]
    yt = torch.tensor(y, dtype=torch.int64)
    g = torch.Generator().manual_seed(SEED)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(yt), generator=g)
        for i in range(0, len(yt), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            nn.functional.cross_entropy(model(*[x[idx] for x in xs]), yt[idx]).backward()
            opt.step()
    model.eval()
    return model


def trained(workdir, epochs=40):
    """Both models, trained once and kept as state dicts in workdir (source.pt, target.pt)."""
    x_tr, _, y_tr, _ = data()
    out = []
    for name, cls, xs in (("source", Source, (x_tr,)), ("target", Target, halves(x_tr))):
        path = os.path.join(workdir, f"{name}.pt")
        torch.manual_seed(SEED)
        model = cls()
        if os.path.exists(path):
            model.load_state_dict(torch.load(path))
            model.eval()
        else:
            train(model, xs, y_tr, epochs)
            os.makedirs(workdir, exist_ok=True)
            torch.save(model.state_dict(), path)
        out.append(model)
    return out


def compile_both(workdir, epochs=40):
    """Compile both models (compile_brevitas_qat_model, 4-bit inputs and outputs); prints the
    compile times and the maximum bit-widths. Returns {"source": qm, "target": qm}."""
    import time
    from veil.ml.torch import compile_brevitas_qat_model
    source, target = trained(workdir, epochs)
    x_tr = data()[0]
    t0 = time.time()
    qs = compile_brevitas_qat_model(source, x_tr, n_bits=N_BITS)
    print(f"Compiled the source model in {time.time() - t0:.2f} s", flush=True)
    t0 = time.time()
    qt = compile_brevitas_qat_model(target, halves(x_tr), n_bits=N_BITS)
    print(f"Compiled the target model in {time.time() - t0:.2f} s", flush=True)
    bs = qs.fhe_circuit.graph.maximum_integer_bit_width()
    bt = qt.fhe_circuit.graph.maximum_integer_bit_width()
    if bs <= 16 and bt <= 16:
        print(f"Max bit-width: source {bs} bits, target {bt} bits -> Fine in FHE!!", flush=True)
    else:
        print(f"Max bit-width: source {bs} bits, target {bt} bits -> too high for FHE (above 16 bits)", flush=True)
    return {"source": qs, "target": qt}
