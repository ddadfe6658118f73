"""concrete-python side of bench/compare/concrete.sh: compile one circuit, time `run` alone.

    python concrete_side.py --circuit tlu4|dot64_tlu4 --runs 30 --threads 1

Prints one key=value line (stdout):
    circuit threads precision pbs params run_ms run_core_ms cpu_per_wall busy_threads os_threads p_error
    global_p_error version
params is n/k/N/pbs<base_log>.<levels>/ks<base_log>.<levels>, as `veil bench circuit` prints it.
run_ms is the median over --runs of `circuit.server.run(args, evaluation_keys=ek)` on inputs
encrypted beforehand (what `circuit.run` does, minus the key lookup); run_core_ms the median of the
compiled program's call alone (`ServerCircuit.call`, without the Python wrapper's per-call setup).
cpu_per_wall is process CPU time / wall time over the timed runs (about 1.0 means one busy core);
busy_threads how many threads did >= 10% of that CPU work (from /proc/self/task/*/stat);
os_threads the process's thread count after the runs (idle runtime/helper threads included).
Every result is decrypted (outside the timed region) and checked against the clear function (the
inputs differ run to run); a mismatch exits 1.

The thread count must be set through the environment before this process starts (concrete.sh does
it): OMP_NUM_THREADS / OMP_THREAD_LIMIT (the OpenMP loops of loop_parallelize, on by default),
RAYON_NUM_THREADS (the Rust backend's pool), DFR_NUM_THREADS (dataflow runtime, off here).
This script refuses to run when they disagree with --threads.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

TABLE = [(x * x) % 13 for x in range(16)]  # same table as bench/bench_circuit.c
THREAD_VARS = ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "RAYON_NUM_THREADS", "DFR_NUM_THREADS")


def sparse_binary(rng, k=None):
    """64 binary features, at most 15 active (distinct positions)."""
    x = np.zeros(64, dtype=np.int64)
    if k is None:
        k = int(rng.integers(0, 16))
    x[rng.choice(64, size=k, replace=False)] = 1
    return x


def build(name, fhe):
    table = fhe.LookupTable(TABLE)
    rng = np.random.default_rng(12345)
    if name == "tlu4":

        def tlu4(x):
            return table[x]

        fn = tlu4
        inputset = [i % 16 for i in range(100)]  # covers 0..15
        clear = lambda x: TABLE[x]
        samples = [int(v) for v in rng.integers(0, 16, size=1000)]
    elif name == "dot64_tlu4":
        weights = np.ones(64, dtype=np.int64)

        def dot64_tlu4(x):
            return table[np.dot(x, weights)]

        fn = dot64_tlu4
        inputset = [sparse_binary(rng, 15)] + [sparse_binary(rng) for _ in range(99)]
        clear = lambda x: TABLE[int(np.dot(x, weights))]
        samples = [sparse_binary(rng) for _ in range(1000)]
    else:
        raise SystemExit(f"concrete_side.py: unknown circuit '{name}' (tlu4, dot64_tlu4)")
    return fhe.compiler({"x": "encrypted"})(fn), inputset, clear, samples


def fmt_params(st):
    pbs = list(st["programmable_bootstrap_count_per_parameter"].keys())
    ks = list(st["key_switch_count_per_parameter"].keys())
    if len(pbs) != 1 or len(ks) != 1:  # one parameter set expected for these circuits
        return "multi:" + ";".join(str(p) for p in pbs + ks).replace(" ", "")
    b, k = pbs[0], ks[0]
    return (
        f"n{b.input_lwe_dimension()}/k{b.glwe_dimension()}/N{b.polynomial_size()}"
        f"/pbs{b.base_log()}.{b.level()}/ks{k.base_log()}.{k.level()}"
    )


def task_cpu():
    """CPU ticks (utime + stime) of each thread of this process."""
    out = {}
    for t in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{t}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[t] = int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--circuit", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--p-error", type=float, default=2.0**-40)
    ap.add_argument("--show-optimizer", action="store_true")
    a = ap.parse_args()
    bad = [v for v in THREAD_VARS if os.environ.get(v) != str(a.threads)]
    if bad:
        raise SystemExit(f"concrete_side.py: set {', '.join(bad)}={a.threads} in the environment first")

    import warnings

    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    from concrete import fhe
    from concrete.fhe.version import __version__

    compiler, inputset, clear, samples = build(a.circuit, fhe)
    cfg = fhe.Configuration(
        p_error=a.p_error,
        global_p_error=None,  # p_error alone bounds each lookup (no global override)
        loop_parallelize=True,  # default: OpenMP loops, sized by OMP_NUM_THREADS
        dataflow_parallelize=False,
        auto_parallelize=False,
        show_optimizer=a.show_optimizer,
    )
    circuit = compiler.compile(inputset, configuration=cfg)
    width = circuit.graph.maximum_integer_bit_width()
    st = circuit.statistics
    circuit.keygen()
    ek = circuit.client.evaluation_keys
    server = circuit.server

    xs = [samples[r % len(samples)] for r in range(a.runs)]
    encs = [circuit.encrypt(x) for x in xs]

    # the compiled program's entry point, as Server.run reaches it
    from concrete.compiler import ServerProgram

    core = ServerProgram(server._library, False).get_server_circuit(
        circuit.client.specs.program_info.get_circuits()[0].get_name()
    )
    keyset = ek.server_keyset

    def check(x, res):
        got = circuit.decrypt(res)
        if int(got) != clear(x):
            print(f"concrete_side.py: {a.circuit}: wrong result {got} != {clear(x)}", file=sys.stderr)
            sys.exit(1)

    check(xs[0], server.run(encs[0], evaluation_keys=ek))  # warm-up
    t_run, t_core, cpu = [], [], 0.0
    ticks0 = task_cpu()
    for x, e in zip(xs, encs):
        c, t = time.process_time(), time.perf_counter()
        res = server.run(e, evaluation_keys=ek)
        t_run.append(time.perf_counter() - t)
        cpu += time.process_time() - c
        check(x, res)
    cpu_per_wall = cpu / sum(t_run)
    ticks1 = task_cpu()
    # threads that did >= 10% of the timed runs' CPU work
    hz = os.sysconf("SC_CLK_TCK")
    busy = sum(1 for t, v in ticks1.items() if (v - ticks0.get(t, 0)) / hz >= 0.10 * max(cpu, 1e-9))
    for x, e in zip(xs, encs):
        t = time.perf_counter()
        out = core.call([e._inner], keyset)
        t_core.append(time.perf_counter() - t)
        check(x, fhe.Value(out[0]))
    os_threads = len(os.listdir("/proc/self/task"))

    print(
        f"circuit={a.circuit} threads={a.threads} precision={width} "
        f"pbs={st['programmable_bootstrap_count']} params={fmt_params(st)} "
        f"run_ms={1e3 * statistics.median(t_run):.2f} run_core_ms={1e3 * statistics.median(t_core):.2f} "
        f"cpu_per_wall={cpu_per_wall:.2f} busy_threads={busy} os_threads={os_threads} "
        f"p_error={st['p_error']:.3g} global_p_error={st['global_p_error']:.3g} version={__version__}",
        flush=True,
    )


if __name__ == "__main__":
    main()
