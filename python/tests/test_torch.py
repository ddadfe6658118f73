"""veil.ml.torch: a float MLP and a CNN (compile_torch_model) and a Brevitas QAT MLP
(compile_brevitas_qat_model) trained here, exported in a temporary directory, compiled by veil:
simulated accuracy within a point of the torch model's, encrypted answers on 5 samples (whose
prediction no simulation moves) equal to clear's and simulation's; several inputs, clear inputs, and the errors a user meets."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import veil
from stable import stable_rows
from veil.ml.torch import compile_brevitas_qat_model, compile_torch_model

SEED = 7
SIM_SEED = bytes(range(16))


def fit(model, xs, y, epochs, lr):
    """model: a module, or a function making it once the seed is set (its initial weights then do
    not depend on what ran before in the process: CI runs the whole file, a local -k one test)"""
    torch.manual_seed(SEED)
    if not isinstance(model, nn.Module):
        model = model()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xs = [torch.tensor(x, dtype=torch.float32) for x in (xs if isinstance(xs, tuple) else (xs,))]
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


def torch_acc(model, xs, y):
    with torch.no_grad():
        out = model(*[torch.tensor(x, dtype=torch.float32) for x in (xs if isinstance(xs, tuple) else (xs,))])
    return float(np.mean(out.numpy().argmax(1) == y))


def breast_cancer():
    x_tr, x_te, y_tr, y_te = train_test_split(*load_breast_cancer(return_X_y=True), test_size=0.3,
                                              random_state=SEED, stratify=load_breast_cancer().target)
    sc = StandardScaler().fit(x_tr)
    return sc.transform(x_tr).astype(np.float32), sc.transform(x_te).astype(np.float32), y_tr, y_te


def digits():
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]  # (n, 1, 8, 8) in [0, 1]
    return train_test_split(x, d.target, test_size=0.3, random_state=SEED, stratify=d.target)


def check(qm, model, x_te, y_te, tol=0.01):
    ref = torch_acc(model, x_te, y_te)
    qm.model.seed_simulation(SIM_SEED)
    sim = qm.forward(x_te, fhe="simulate")
    acc = float(np.mean(sim.argmax(1) == y_te))
    assert acc >= ref - tol, (acc, ref)
    # encrypted, on 5 samples no simulation moves (approximate rounding lets a sample at a rounding
    # midpoint predict either way): the predictions of clear and of simulation
    rows = stable_rows(lambda x: qm.forward(x, fhe="simulate").argmax(1), lambda x: qm.forward(x).argmax(1), x_te, 5)
    ex = qm.forward(x_te[rows], fhe="execute")  # keys made on first use
    assert np.array_equal(ex.argmax(1), qm.forward(x_te[rows]).argmax(1)), (rows, ex)
    assert np.array_equal(ex.argmax(1), sim[rows].argmax(1)), (rows, ex, sim[rows])
    return acc, ref


def test_float_mlp_post_training_quantization():
    x_tr, x_te, y_tr, y_te = breast_cancer()
    model = fit(lambda: nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2)),
                x_tr, y_tr, epochs=60, lr=1e-3)
    qm = compile_torch_model(model, torch.tensor(x_tr), n_bits=8)
    assert qm.torch_model is model
    assert 8 <= qm.fhe_circuit.graph.maximum_integer_bit_width() <= 24  # its leveled accumulators count too
    q = qm.quantize_input(x_te[:4])
    assert np.array_equal(qm.dequantize_output(qm.quantized_forward(q, fhe="disable")), qm.forward(x_te[:4]))
    # 2 points: automatic rounding is approximate (an off-by-one now and then in simulation); over
    # seeds 0..39 of this training the widest gap was 1.1 points. (CI once met, with other initial
    # weights, a model whose logits on benign samples were the bias alone, rounded to a tie: 0.374;
    # models/breast_cancer_dead keeps that model for ml_test_models.)
    check(qm, model, x_te, y_te, tol=0.02)


def test_cnn():
    x_tr, x_te, y_tr, y_te = digits()
    model = fit(lambda: nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 10)),
                x_tr, y_tr, epochs=30, lr=3e-3)
    qm = compile_torch_model(model, x_tr)
    assert qm.fhe_circuit.statistics["pbs_count"] >= 36  # a lookup per ReLU
    check(qm, model, x_te, y_te)


def test_brevitas_qat_mlp():
    import brevitas.nn as qnn
    x_tr, x_te, y_tr, y_te = digits()
    x_tr, x_te = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)
    torch.manual_seed(SEED)
    model = nn.Sequential(qnn.QuantIdentity(bit_width=4, return_quant_tensor=True),
                          qnn.QuantLinear(64, 16, bias=True, weight_bit_width=4),
                          qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
                          qnn.QuantLinear(16, 10, bias=True, weight_bit_width=4))
    fit(model, x_tr, y_tr, epochs=30, lr=3e-3)
    qm = compile_brevitas_qat_model(model, x_tr, n_bits={"model_inputs": 4, "model_outputs": 4})
    assert qm.fhe_circuit.graph.maximum_integer_bit_width() <= 16
    check(qm, model, x_te, y_te)


class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, a, b):
        return self.net(torch.cat([a, b], dim=1))


def test_several_inputs_and_a_clear_one():
    x_tr, x_te, y_tr, y_te = breast_cancer()
    split = lambda x: (x[:, :15], x[:, 15:])  # noqa: E731
    model = fit(Two, split(x_tr), y_tr, epochs=40, lr=1e-3)
    qm = compile_torch_model(model, split(x_tr))
    assert [n for n, _ in qm.model.inputs] == ["input_0", "input_1"]
    y = qm.forward(*split(x_te))
    assert float(np.mean(y.argmax(1) == y_te)) >= torch_acc(model, split(x_te), y_te) - 0.01
    qc = compile_torch_model(model, split(x_tr), inputs_encryption_status=["encrypted", "clear"])
    # the clear input travels in the clear and runs as trivial ciphertexts: execute predicts as clear
    # does, each output at most one rounding step away (approximate rounding lets a value at the edge
    # of its box land in the next one); the step is what the clear outputs of the test set vary by
    rows = stable_rows(lambda *x: qc.forward(*x, fhe="simulate").argmax(1), lambda *x: qc.forward(*x).argmax(1),
                       split(x_te), 3)
    q = qc.quantize_input(*split(x_te[rows]))
    ex, cl = qc.quantized_forward(*q, fhe="execute"), qc.quantized_forward(*q)
    allq = qc.quantized_forward(*qc.quantize_input(*split(x_te)))
    step = np.gcd.reduce(np.abs(allq - allq[:1]), axis=0)
    assert (step > 1).all() and (np.abs(ex - cl) <= step).all(), (ex, cl, step)
    assert np.array_equal(ex.argmax(1), cl.argmax(1)), (ex, cl)
    with pytest.raises(ValueError, match="2 entries for a model of 1 inputs"):
        compile_torch_model(nn.Linear(30, 2), x_tr, inputs_encryption_status=["clear", "encrypted"])


class Sine(nn.Module):
    def forward(self, x):
        return torch.sin(x)


def test_errors_name_the_problem():
    x_tr = breast_cancer()[0]
    with pytest.raises(veil.VeilError, match="Sin"):  # an operator veil does not import
        compile_torch_model(nn.Sequential(nn.Linear(30, 4), Sine()), x_tr)
    with pytest.raises(RuntimeError):  # torch itself refuses an inputset of the wrong shape
        compile_torch_model(nn.Linear(30, 2), x_tr[:, :20])
    qm = compile_torch_model(nn.Sequential(nn.Linear(30, 2)), x_tr)
    with pytest.raises(ValueError, match="20 values per sample, 30 expected"):
        qm.forward(x_tr[:2, :20])
    with pytest.raises(ValueError, match="fhe='yes'"):
        qm.forward(x_tr[:2], fhe="yes")
    with pytest.raises(ValueError, match="inputset"):
        compile_torch_model(nn.Linear(30, 2), np.zeros((0, 30), np.float32))
