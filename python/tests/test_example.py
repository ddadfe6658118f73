"""examples/python/transfer runs end to end: test.py's simulated accuracy, server.py compiling both
models and serving them over HTTP, client.py's encrypted answers equal to the server's simulated
ones (few samples)."""
import os
import re
import subprocess
import sys
import time

SRC = os.environ.get("VEIL_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
EX = os.path.join(SRC, "examples", "python", "transfer")


def run(*args, **kw):
    return subprocess.run([sys.executable, *args], cwd=EX, capture_output=True, text=True, timeout=600, **kw)


def test_transfer_example(tmp_path):
    work = str(tmp_path / "work")
    r = run("test.py", "--workdir", work, "--limit", "60")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "-> Fine in FHE!!" in r.stdout
    accs = [float(a) for a in re.findall(r"simulated accuracy ([0-9.]+)", r.stdout)]
    assert len(accs) == 2 and min(accs) >= 0.9, r.stdout
    log = open(tmp_path / "server.log", "w")
    srv = subprocess.Popen([sys.executable, "server.py", "--workdir", work, "--port", "0"], cwd=EX, stdout=log,
                           stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        for _ in range(300):
            m = re.search(r"listening on (http://[0-9.:]+)", open(tmp_path / "server.log").read())
            if m or srv.poll() is not None:
                url = m and m.group(1)
                break
            time.sleep(0.2)
        assert url, open(tmp_path / "server.log").read()[-2000:]
        c = run("client.py", "--url", url, "--workdir", str(tmp_path / "client"), "--samples", "1")
        assert c.returncode == 0, c.stderr[-2000:]
        assert "FHE and simulation agree on 2 of 2 answers" in c.stdout, c.stdout
        assert os.path.exists(tmp_path / "client" / "source" / "keys" / "secret.key")
    finally:
        srv.terminate()
        srv.wait(timeout=30)
        log.close()
    assert "Compiled the source model" in open(tmp_path / "server.log").read()
