"""Deployment with Concrete ML 1.9's names: FHEModelDev writes the bundles, FHEModelClient makes
keys, encrypts and decrypts, FHEModelServer runs. The files are the ones the veil command reads
and writes (client.veil, server.veil; a key directory as `veil client` keeps it), so a model
compiled here serves with `veil serve` and answers `veil client`."""
import hashlib
import os

import numpy as np

from .. import Model, _veil


class FHEModelDev:
    """FHEModelDev(path, model).save(): path/client.veil and path/server.veil."""

    def __init__(self, path_dir, model=None):
        self.path_dir = str(path_dir)
        self.model = model

    def save(self, mode="inference", via_mlir=False):
        m = self.model
        if hasattr(m, "_veil_model"):  # a veil.ml.sklearn built-in
            m = m._veil_model()
        m = getattr(m, "model", m)  # a QuantizedModule or a veil.Model
        if not isinstance(m, Model):
            raise TypeError("FHEModelDev needs a compiled model (veil.Model or veil.ml QuantizedModule)")
        os.makedirs(os.path.dirname(os.path.abspath(self.path_dir)), exist_ok=True)
        m.save(self.path_dir)


class FHEModelClient:
    """The client: its secret key never leaves it (held in C, wiped when freed; on disk in key_dir
    with mode 0600)."""

    def __init__(self, path_dir, key_dir=None):
        self.path_dir = str(path_dir)
        self.key_dir = None if key_dir is None else str(key_dir)
        self._c = _veil.client_load(os.path.join(self.path_dir, "client.veil"))
        info = self._c.info()
        self._isz, self._osz = info["input_size"], info["output_size"]
        self._made = False
        if self.key_dir and os.path.exists(os.path.join(self.key_dir, "secret.key")):
            self._c.load_keys(self.key_dir)

    def generate_private_and_evaluation_keys(self, force=False, seed=None):
        """New keys (from the OS CSPRNG; seed is for tests), kept in key_dir when there is one.
        Without force, keys already loaded from key_dir are kept (but their evaluation keys then
        come from key_dir/eval.keys)."""
        if self._c.info()["has_secret_key"] and not force:
            return
        self._c.keygen(seed)
        self._made = True
        if self.key_dir:
            self._c.save_keys(self.key_dir)

    def get_serialized_evaluation_keys(self):
        if not self._c.info()["needs_eval_keys"]:
            return b""
        if self._made:
            return self._c.eval_keys()
        if self.key_dir and os.path.exists(os.path.join(self.key_dir, "eval.keys")):
            with open(os.path.join(self.key_dir, "eval.keys"), "rb") as f:
                return f.read()
        raise RuntimeError("no evaluation keys: call generate_private_and_evaluation_keys() first")

    def quantize_encrypt_serialize(self, *x):
        """One sample (or several: a list of requests, one per sample), every input of the model."""
        xs = [np.asarray(a, dtype=np.float64) for a in x]
        n = xs[0].shape[0] if xs[0].ndim > 1 else 1
        flat = np.ascontiguousarray(np.concatenate([a.reshape(n, -1) for a in xs], axis=1))
        if flat.shape[1] != self._isz:
            raise ValueError(f"{flat.shape[1]} values per sample, the model takes {self._isz}")
        reqs = [self._c.encrypt(flat[i]) for i in range(n)]
        return reqs[0] if n == 1 else reqs

    def deserialize_decrypt_dequantize(self, *serialized_results):
        rows = [np.frombuffer(self._c.decrypt(r), dtype=np.float64) for r in serialized_results]
        return np.stack(rows)

    @property
    def model_id(self):
        return self._c.info()["model_id"]


class FHEModelServer:
    """The server: the program and the evaluation keys, no secret key anywhere."""

    def __init__(self, path_dir):
        self.path_dir = str(path_dir)
        self._s = None
        self._keys = {}  # sha256 of the serialized keys -> loaded keys (loading takes seconds)
        self._last = (None, None)  # the last keys object given, and its loaded keys

    def load(self):
        self._s = _veil.server_load(os.path.join(self.path_dir, "server.veil"))
        return self

    def run(self, serialized_encrypted_quantized_data, serialized_evaluation_keys=b"", threads=0):
        if self._s is None:
            self.load()
        keys = None
        if serialized_evaluation_keys:
            if self._last[0] is serialized_evaluation_keys:  # the same object again: no hashing
                keys = self._last[1]
            else:
                h = hashlib.sha256(serialized_evaluation_keys).digest()
                keys = self._keys.get(h)
                if keys is None:
                    keys = self._keys[h] = self._s.load_keys(serialized_evaluation_keys)
                self._last = (serialized_evaluation_keys, keys)
        return self._s.run(keys, serialized_encrypted_quantized_data, threads)
