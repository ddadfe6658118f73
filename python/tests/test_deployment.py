"""Deployment from Python: FHEModelDev / FHEModelClient / FHEModelServer in process, key
directories reused and refused for another model, and a Python-compiled bundle served by
`veil serve`, queried by veil.remote.Client and by `veil client`: every answer equals clear."""
import os
import subprocess
import time

import numpy as np
import pytest

import veil
import veil.remote
from veil.ml import FHEModelClient, FHEModelDev, FHEModelServer, compile_onnx_model

SRC = os.environ.get("VEIL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(SRC, "models")
BINARY = os.environ.get("VEIL_BINARY")


def load(name, f):
    return np.load(os.path.join(MODELS, name, f))


@pytest.fixture(scope="module")
def dt(tmp_path_factory):
    d = tmp_path_factory.mktemp("dep") / "dt"
    qm = compile_onnx_model(os.path.join(MODELS, "dt_breast_cancer", "model.onnx"), load("dt_breast_cancer", "train.npy"))
    FHEModelDev(d, qm).save()
    test = load("dt_breast_cancer", "test.npy")[:3]
    label, proba = qm.forward(test, fhe="disable")
    clear = np.concatenate([label.reshape(len(test), -1), proba.reshape(len(test), -1)], axis=1)
    return d, test, clear


def test_client_server_in_process(dt, tmp_path):
    d, test, clear = dt
    keys = tmp_path / "keys"
    client = FHEModelClient(d, key_dir=keys)
    client.generate_private_and_evaluation_keys()
    assert (keys / "secret.key").exists() and oct((keys / "secret.key").stat().st_mode & 0o777) == "0o600"
    ek = client.get_serialized_evaluation_keys()
    server = FHEModelServer(d).load()
    for i in range(len(test)):
        enc = client.quantize_encrypt_serialize(test[i:i + 1])
        res = server.run(enc, ek)
        assert np.array_equal(client.deserialize_decrypt_dequantize(res)[0], clear[i])
    # a second client on the same key directory decrypts the first one's answers
    again = FHEModelClient(d, key_dir=keys)
    res = server.run(client.quantize_encrypt_serialize(test[:1]), ek)
    assert np.array_equal(again.deserialize_decrypt_dequantize(res)[0], clear[0])
    # a request without keys, or a malformed one, is refused by name
    with pytest.raises(veil.VeilError):
        server.run(enc, b"")
    with pytest.raises(veil.VeilError):
        server.run(b"garbage", ek)


def test_key_directory_of_another_model_is_refused(dt, tmp_path):
    d, _, _ = dt
    other = tmp_path / "lr"
    m = veil.compile(os.path.join(MODELS, "logreg_breast_cancer", "model.onnx"), load("logreg_breast_cancer", "train.npy"))
    FHEModelDev(other, m).save()
    keys = tmp_path / "lr-keys"
    c = FHEModelClient(other, key_dir=keys)
    c.generate_private_and_evaluation_keys()
    with pytest.raises(veil.VeilError, match="made for"):
        FHEModelClient(d, key_dir=keys)


@pytest.mark.skipif(not BINARY, reason="VEIL_BINARY (the veil command) not given")
def test_served_by_veil_serve(dt, tmp_path):
    d, test, clear = dt
    pf = tmp_path / "port"
    log = open(tmp_path / "serve.log", "w")
    srv = subprocess.Popen([BINARY, "serve", str(d), "--port", "0", "--port-file", str(pf), "--data",
                            str(tmp_path / "data")], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            if pf.exists() and pf.read_text().strip():
                break
            time.sleep(0.05)
        url = "http://127.0.0.1:" + pf.read_text().strip()
        rc = veil.remote.Client(url, "dt", tmp_path / "rkeys")
        y = rc.predict(test)
        assert np.array_equal(y, clear)
        # the veil command queries the Python-compiled model too
        np.save(tmp_path / "x.npy", test)
        subprocess.run([BINARY, "client", "--url", url, "--model", "dt", "--keys", str(tmp_path / "ckeys"), "--input",
                        str(tmp_path / "x.npy"), "-o", str(tmp_path / "label.npy"), "-o", str(tmp_path / "proba.npy")],
                       check=True, capture_output=True)
        assert np.array_equal(np.load(tmp_path / "label.npy").reshape(-1), clear[:, 0])
        assert np.array_equal(np.load(tmp_path / "proba.npy"), clear[:, 1:])
    finally:
        srv.terminate()
        srv.wait(timeout=30)
        log.close()
