"""The application's server: compiles both models at start-up (Brevitas QAT, 4-bit inputs and
outputs) and serves them over HTTP, simulated and in FHE. It never holds a secret key.

    GET  /models/NAME/client.veil            the client bundle (quantizers, parameters; no key)
    POST /models/NAME/simulate               body: .npz of the clear inputs -> .npy of the outputs
    POST /models/NAME/keys                   body: evaluation keys -> {"key_id": ...}
    POST /models/NAME/predict?key=KEY_ID     body: encrypted inputs -> encrypted outputs

Usage: python server.py [--workdir DIR] [--host 127.0.0.1] [--port 8000] (port 0: any free port)"""
import argparse
import hashlib
import io
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

import common
from veil.ml import FHEModelDev, FHEModelServer

MAX_BODY = 4 << 30  # evaluation keys are the largest bodies (hundreds of MB)


class App:
    def __init__(self, workdir):
        self.models = common.compile_both(workdir)
        self.servers, self.bundles, self.keys = {}, {}, {}
        self.lock = threading.Lock()  # one evaluation at a time per process: each uses every core
        for name, qm in self.models.items():
            d = os.path.join(workdir, "bundles", name)
            FHEModelDev(d, qm).save()  # client.veil + server.veil, as `veil compile` writes them
            self.servers[name] = FHEModelServer(d).load()
            with open(os.path.join(d, "client.veil"), "rb") as f:
                self.bundles[name] = f.read()


def handler(app):
    class H(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def reply(self, code, body, ctype="application/octet-stream"):
            if isinstance(body, str):
                body, ctype = (body + "\n").encode(), "text/plain; charset=utf-8"
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def route(self):
            u = urlparse(self.path)
            parts = u.path.strip("/").split("/")
            if len(parts) != 3 or parts[0] != "models":
                return None, None, u
            if parts[1] not in app.models:
                self.reply(404, f"no model '{parts[1]}' (models: {', '.join(app.models)})")
                return False, None, u
            return parts[1], parts[2], u

        def body(self):
            n = self.headers.get("Content-Length")
            if n is None or not n.isdigit():
                self.reply(411, "a Content-Length is needed")
                return None
            if int(n) > MAX_BODY:
                self.reply(413, f"body of {n} bytes: at most {MAX_BODY}")
                return None
            return self.rfile.read(int(n))

        def do_GET(self):
            name, what, _ = self.route()
            if name is False:
                return
            if what == "client.veil":
                return self.reply(200, app.bundles[name])
            self.reply(404, f"no route GET {self.path}")

        def do_POST(self):
            name, what, u = self.route()
            if name is False:
                return
            if what not in ("simulate", "keys", "predict"):
                return self.reply(404, f"no route POST {self.path}")
            data = self.body()
            if data is None:
                return
            try:
                if what == "simulate":
                    with np.load(io.BytesIO(data)) as z:
                        xs = [z[k] for k in sorted(z.files, key=int)]
                    with app.lock:
                        y = app.models[name].forward(*xs, fhe="simulate")
                    buf = io.BytesIO()
                    np.save(buf, y)
                    return self.reply(200, buf.getvalue())
                if what == "keys":
                    key_id = hashlib.sha256(data).hexdigest()[:32]
                    with app.lock:
                        app.keys[(name, key_id)] = data
                    return self.reply(200, json.dumps({"key_id": key_id}).encode(), "application/json")
                key_id = parse_qs(u.query).get("key", [""])[0]
                keys = app.keys.get((name, key_id))
                if keys is None:
                    return self.reply(403, f"unknown key id '{key_id}' for model '{name}': upload keys first")
                with app.lock:
                    answer = app.servers[name].run(data, keys)
                return self.reply(200, answer)
            except Exception as e:  # veil's one-line message (or NumPy's) for a bad body
                return self.reply(400, f"{what}: {e}")

    return H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", default="work")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    a = ap.parse_args()
    app = App(a.workdir)
    httpd = ThreadingHTTPServer((a.host, a.port), handler(app))
    print(f"listening on http://{a.host}:{httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
