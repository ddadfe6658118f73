"""A model served by `veil serve`: veil.remote.Client(url, model, key_dir) fetches the client
bundle, makes keys once (kept in key_dir) and uploads the evaluation keys once, then predict(x)
encrypts, sends, and decrypts here (the secret key never leaves this machine)."""
import numpy as np

from . import _veil


class Client:
    def __init__(self, url, model, key_dir, cacert=None, insecure=False):
        self._r = _veil.remote_open(url, model, str(key_dir), cacert, bool(insecure))
        self._isz, self._osz = self._r.sizes()

    def predict(self, *x, concurrency=1):
        xs = [np.asarray(a, dtype=np.float64) for a in x]
        n = xs[0].shape[0] if xs[0].ndim > 1 else 1
        flat = np.ascontiguousarray(np.concatenate([a.reshape(n, -1) for a in xs], axis=1))
        if flat.shape[1] != self._isz:
            raise ValueError(f"{flat.shape[1]} values per sample, the model takes {self._isz}")
        y = np.frombuffer(self._r.predict(flat, n, concurrency), dtype=np.float64)
        return y.reshape(n, self._osz)
