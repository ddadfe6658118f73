"""The application's client: fetches each model's client bundle, makes its keys (the secret key stays
in --workdir), uploads the evaluation keys once, encrypts test images, asks the server, decrypts.
Also asks for the simulated answer of the same images (clear inputs) to compare.
Usage: python client.py [--url http://127.0.0.1:8000] [--workdir DIR] [--samples 3]"""
import argparse
import io
import json
import os
import time
import urllib.request

import numpy as np

import common
from veil.ml import FHEModelClient


def post(url, data):
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--workdir", default="client-work")
    ap.add_argument("--samples", type=int, default=3)
    a = ap.parse_args()
    _, x_te, _, y_te = common.data()
    x_te, y_te = x_te[:a.samples], y_te[:a.samples]
    agree = 0
    for name, xs in (("source", (x_te,)), ("target", common.halves(x_te))):
        d = os.path.join(a.workdir, name)
        os.makedirs(d, exist_ok=True)
        with urllib.request.urlopen(f"{a.url}/models/{name}/client.veil", timeout=60) as r:
            with open(os.path.join(d, "client.veil"), "wb") as f:
                f.write(r.read())
        client = FHEModelClient(d, key_dir=os.path.join(d, "keys"))
        t0 = time.time()
        client.generate_private_and_evaluation_keys()
        ek = client.get_serialized_evaluation_keys()
        key_id = json.loads(post(f"{a.url}/models/{name}/keys", ek))["key_id"]
        print(f"{name}: keys made and {len(ek) / 1e6:.1f} MB uploaded in {time.time() - t0:.2f} s", flush=True)
        buf = io.BytesIO()
        np.savez(buf, **{str(i): x for i, x in enumerate(xs)})
        sim = np.load(io.BytesIO(post(f"{a.url}/models/{name}/simulate", buf.getvalue())))
        for i in range(len(y_te)):
            t0 = time.time()
            req = client.quantize_encrypt_serialize(*[x[i] for x in xs])
            y = client.deserialize_decrypt_dequantize(post(f"{a.url}/models/{name}/predict?key={key_id}", req))
            p, s = int(np.argmax(y)), int(np.argmax(sim[i]))
            agree += int(p == s)
            print(f"{name}: image {i}: FHE says {p}, simulation {s}, label {y_te[i]} ({time.time() - t0:.2f} s)",
                  flush=True)
    print(f"FHE and simulation agree on {agree} of {2 * len(y_te)} answers", flush=True)


if __name__ == "__main__":
    main()
