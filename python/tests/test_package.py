"""The veil package over libveil.so: compile the committed ONNX models from Python, the three modes
against the float reference and each other, the Concrete-ML-style steps, bundles shared with the
veil command, errors as VeilError with veil's message, bad arrays refused before C sees them."""
import os
import subprocess

import numpy as np
import pytest

import veil
from veil.ml import compile_onnx_model

SRC = os.environ.get("VEIL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(SRC, "models")
SEED = bytes(range(16))  # VEIL_SEED_BYTES


def data(name, *files):
    return [np.load(os.path.join(MODELS, name, f)) for f in files]


def test_linear_model_leveled_execute_equals_clear():
    train, test, labels = data("logreg_breast_cancer", "train.npy", "test.npy", "labels.npy")
    qm = compile_onnx_model(os.path.join(MODELS, "logreg_breast_cancer", "model.onnx"), train)
    assert qm.fhe_circuit.statistics["pbs_count"] == 0  # leveled: no lookups
    label, proba = qm.forward(test, fhe="disable")
    assert label.shape == (len(test),) and proba.shape == (len(test), 2)
    acc = float(np.mean(label.astype(np.int64) == labels))
    sk = float(open(os.path.join(MODELS, "logreg_breast_cancer", "sklearn.txt")).read())
    assert acc >= sk - 0.01, (acc, sk)
    # execute (real encryption) equals clear exactly
    qm.fhe_circuit.keygen(seed=SEED)
    le, pe = qm.forward(test[:20], fhe="execute")
    assert np.array_equal(le, label[:20]) and np.array_equal(pe, proba[:20])


def test_steps_compose_like_forward():
    train, test = data("breast_cancer_mlp", "train.npy", "test.npy")
    qm = compile_onnx_model(os.path.join(MODELS, "breast_cancer_mlp", "model.onnx"), train)
    assert "rounded" in qm.model.compile_log()  # automatic rounding by default
    assert 6 <= qm.fhe_circuit.graph.maximum_integer_bit_width() <= 24
    q = qm.quantize_input(test[:30])
    assert q.dtype == np.int64 and q.shape == (30, 30)
    y = qm.dequantize_output(qm.quantized_forward(q, fhe="disable"))
    assert np.array_equal(y, qm.forward(test[:30], fhe="disable"))
    # simulate: the same program with noise, seeded; it agrees with clear on the classes
    qm.model.seed_simulation(SEED)
    ys = qm.forward(test, fhe="simulate")
    yc = qm.forward(test, fhe="disable")
    agree = float(np.mean(ys.argmax(1) == yc.argmax(1)))
    assert agree >= 0.97, agree
    # the float model: onnxruntime's outputs within 1e-4
    (ort,) = data("breast_cancer_mlp", "ort.npy")
    assert np.max(np.abs(qm.model.float_forward(test) - ort.reshape(len(test), -1))) < 1e-4
    assert "bit-width" in qm.bitwidth_and_range_report()
    assert "parameters" in str(qm.fhe_circuit)


def test_tree_execute_and_bundles_shared_with_the_command(tmp_path):
    train, test = data("dt_breast_cancer", "train.npy", "test.npy")
    m = veil.compile(os.path.join(MODELS, "dt_breast_cancer", "model.onnx"), train)
    st = m.statistics()
    assert st["pbs_count"] == 25 and 0 < st["ks_count"] < 25  # lookups share bootstrappings
    label, proba = m.forward(test[:5])
    with pytest.raises(veil.VeilError, match="keys"):  # execute before keys: named
        m.forward(test[:1], mode="execute")
    m.keygen(SEED)
    le, pe = m.forward(test[:5], mode="execute")
    assert np.array_equal(le, label) and np.array_equal(pe, proba)
    # saved from Python, read by `veil info` and `veil predict`, and loaded back
    d = tmp_path / "dt"
    m.save(d)
    assert (d / "client.veil").exists() and (d / "server.veil").exists()
    binary = os.environ.get("VEIL_BINARY")
    if binary:
        info = subprocess.run([binary, "info", str(d)], capture_output=True, text=True, check=True).stdout
        assert "TreeScores" in info
    m2 = veil.load(d)
    l2, p2 = m2.forward(test[:5])
    assert np.array_equal(l2, label) and np.array_equal(p2, proba)


def test_two_inputs():
    a, b, ta, tb = data("breast_cancer_two", "train_a.npy", "train_b.npy", "test_a.npy", "test_b.npy")
    qm = compile_onnx_model(os.path.join(MODELS, "breast_cancer_two", "model.onnx"), (a, b))
    assert [n for n, _ in qm.model.inputs] and len(qm.model.inputs) == 2
    qa, qb = qm.quantize_input(ta[:10], tb[:10])
    y = qm.dequantize_output(qm.quantized_forward(qa, qb))
    assert np.array_equal(y, qm.forward(ta[:10], tb[:10]))
    with pytest.raises(ValueError, match="inputs given"):
        qm.forward(ta[:10])


def test_errors_are_one_line_veil_errors(tmp_path):
    train, test = data("logreg_breast_cancer", "train.npy", "test.npy")
    with pytest.raises(veil.VeilError) as e:
        veil.compile(str(tmp_path / "missing.onnx"), train)
    assert "\n" not in str(e.value) and str(e.value)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not a model at all")
    with pytest.raises(veil.VeilError):
        veil.compile(str(bad), train)
    m = veil.compile(os.path.join(MODELS, "logreg_breast_cancer", "model.onnx"), train)
    with pytest.raises(ValueError, match="values per sample"):
        m.forward(test[:, :10])
    with pytest.raises(ValueError, match="mode"):
        m.forward(test, mode="fast")
    with pytest.raises(veil.VeilError):
        veil.load(str(tmp_path / "nothing-here"))
    with pytest.raises(ValueError, match="seed"):
        m.keygen(b"short")


def test_raise_log2_n_recovers_a_model_the_default_ceiling_loses():
    # the MLP trained hard (models/train.py breast_cancer_heavy): at N <= 2^13, its quantizers over
    # the whole ranges (clip 1), its 6 rounded bits lose a quarter of the answers; raise_log2_n=15
    # compiles it again at 2^14, which meets min_agreement
    train, test, labels = data("breast_cancer_heavy", "train.npy", "test.npy", "labels.npy")
    onnx = os.path.join(MODELS, "breast_cancer_heavy", "model.onnx")
    fl = float(np.loadtxt(os.path.join(MODELS, "breast_cancer_heavy", "float_accuracy.txt")))
    acc = lambda m: float(np.mean(m.forward(test).argmax(1) == labels))  # noqa: E731
    whole = dict(clip_inputs=1, clip_values=1)
    low = veil.compile(onnx, train, **whole)
    assert "warning:" in low.compile_log() and acc(low) < fl - 0.05
    qm = compile_onnx_model(onnx, train, raise_log2_n=15, **whole)
    log = qm.model.compile_log()
    assert "met at N <= 2^14, kept" in log and "warning:" not in log, log
    assert acc(qm.model) >= fl - 0.02
    with pytest.raises(veil.VeilError, match="raise_log2_N must be 0 or in max_log2_N"):
        veil.compile(onnx, train, raise_log2_n=12)


def test_default_calibration_clips_a_heavy_tailed_model():
    # the same model at the defaults: below min_agreement over the whole ranges, veil tries
    # percentile calibrations at N <= 2^13 and keeps the best, within a point of float
    train, test, labels = data("breast_cancer_heavy", "train.npy", "test.npy", "labels.npy")
    onnx = os.path.join(MODELS, "breast_cancer_heavy", "model.onnx")
    fl = float(np.loadtxt(os.path.join(MODELS, "breast_cancer_heavy", "float_accuracy.txt")))
    m = veil.compile(onnx, train)
    log = m.compile_log()
    assert "calibration: over the values' whole ranges agreement" in log and "did best" in log, log
    assert "warning:" not in log and "N = 2^13" in log, log
    assert float(np.mean(m.forward(test).argmax(1) == labels)) >= fl - 0.01
    with pytest.raises(veil.VeilError, match="input_clip and activation_clip must be 0"):
        veil.compile(onnx, train, clip_values=0.5)
