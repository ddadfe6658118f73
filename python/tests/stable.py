"""The samples a test executes on: those whose prediction no simulation moves.

Approximate rounding lets an accumulator at a rounding midpoint land on either neighbour, in
simulation as under encryption, so a sample near a decision boundary may predict otherwise in
execute than in simulate or clear. Comparing a handful of encrypted inferences with clear ones is
sound only on samples whose prediction does not depend on the draw: stable_rows keeps those on which
simulate predicts as clear in each of RUNS runs. A sample flipping with probability f passes that
screen with probability (1 - f)^RUNS and then flips in execute with probability f: at most
1 / ((RUNS + 1) e) < 1e-4 per executed sample, whatever f is (as tests/ml/stable.h does in C)."""
import numpy as np

RUNS = 4000


def stable_rows(simulate, clear, x, k, pool=10):
    """Indices of the first k rows of x (an array, or a tuple of arrays for several inputs) on which
    simulate(rows) predicts as clear(rows) in every one of RUNS runs; simulate and clear return a
    prediction per row (labels, values or score rows, compared whole)."""
    xs = x if isinstance(x, tuple) else (x,)
    n, found = len(xs[0]), []
    for start in range(0, n, pool):
        rows = np.arange(start, min(n, start + pool))
        part = tuple(a[rows] for a in xs)
        want = np.asarray(clear(*part))
        ok = np.ones(len(rows), dtype=bool)
        for _ in range(RUNS):
            got = np.asarray(simulate(*part))
            ok &= (got == want).reshape(len(rows), -1).all(axis=1)
            if not ok.any():
                break
        found.extend(int(i) for i in rows[ok])
        if len(found) >= k:
            return np.array(found[:k])
    raise AssertionError(f"only {len(found)} of {n} rows predict as clear in {RUNS} simulations, {k} wanted")
