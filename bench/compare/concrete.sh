#!/usr/bin/env bash
# Side-by-side run time of veil and Zama's concrete-python on two circuits (not part of make test):
#   tlu4        one encrypted 4-bit input, one lookup (x*x) % 13
#   dot64_tlu4  64 encrypted binary inputs (at most 15 active), all-ones dot product, same lookup
# Both compile with p_error = 2^-40 per lookup (concrete: p_error=2**-40, global_p_error=None) and
# time `run` alone (inputs encrypted and evaluation keys made beforehand), median of --runs runs,
# at 1 and 2 threads, each (tool, circuit, threads) in its own process.
#
#   bench/compare/concrete.sh [--runs N]          # N >= 1, default 30
#
# One line per (circuit, threads): veil run ms, concrete run ms (circuit.server.run, the public
# API), ratio concrete/veil, concrete's compiled-program call alone (core) and its ratio, the
# parameters each chose (n/k/N/pbs<base_log>.<levels>/ks<base_log>.<levels>), and how many threads
# concrete kept busy during its timed runs (from /proc) with its CPU time / wall time.
#
# Environment: VEIL_BIN (default ./build/veil), VEIL_COMPARE_VENV (default bench/compare/.venv; made
# with the first python3 on PATH, concrete-python installed once and reused), and
# VEIL_COMPARE_CONCRETE_VERSION (default 2.10.0; the newest release is tried when it won't install).
# Concrete's threads: OMP_NUM_THREADS/OMP_THREAD_LIMIT (its OpenMP loops), RAYON_NUM_THREADS (the
# Rust backend), DFR_NUM_THREADS (dataflow runtime; dataflow_parallelize stays off) are all set to
# the thread count for its process.
set -euo pipefail

die() { echo "concrete.sh: $*" >&2; exit 1; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RUNS=30
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) [ $# -ge 2 ] || die "--runs needs a value"; RUNS="$2"; shift 2 ;;
        --runs=*) RUNS="${1#--runs=}"; shift ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (usage: concrete.sh [--runs N])" ;;
    esac
done
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] && [ "$RUNS" -le 1000 ] || die "--runs must be an integer in [1, 1000]"

VEIL="${VEIL_BIN:-$ROOT/build/veil}"
[ -x "$VEIL" ] || die "$VEIL not found: run \`make build\` first"
HELP="$("$VEIL" bench circuit --help 2>/dev/null || true)"
case "$HELP" in
    *tlu4\|*--p-error*) ;;
    *) die "$VEIL predates the tlu4 circuit / --p-error of bench/bench_circuit.c: run \`make build\` again" ;;
esac

VENV="${VEIL_COMPARE_VENV:-$HERE/.venv}"
WANT="${VEIL_COMPARE_CONCRETE_VERSION:-2.10.0}"
PY="$VENV/bin/python"
have_concrete() { [ -x "$PY" ] && "$PY" -W ignore -c 'import concrete.fhe' >/dev/null 2>&1; }
if ! have_concrete; then
    if [ ! -x "$PY" ]; then
        BASEPY="$(command -v python3)" || die "no python3 on PATH"
        echo "# creating $VENV with $BASEPY ($("$BASEPY" --version 2>&1))" >&2
        "$BASEPY" -m venv "$VENV" || die "could not create the virtual environment $VENV"
    fi
    echo "# installing concrete-python $WANT into $VENV (once; several minutes, pulls torch)" >&2
    "$PY" -m pip install -q --upgrade pip >&2 || true
    # concrete/__init__.py imports pkg_resources, which setuptools >= 81 no longer ships
    if ! "$PY" -m pip install -q "concrete-python==$WANT" "setuptools<81" >&2; then
        echo "# concrete-python $WANT did not install; trying the newest release" >&2
        "$PY" -m pip install -q concrete-python "setuptools<81" >&2 ||
            die "pip could not install concrete-python into $VENV"
    fi
    have_concrete || die "concrete-python is installed in $VENV but 'import concrete.fhe' fails"
fi

P_ERROR=9.094947017729282e-13 # 2^-40
kv() { sed -n "s/.*[[:space:]]$2=\([^[:space:]]*\).*/\1/p" <<<" $1"; }

CVER="$("$PY" -W ignore -c 'from concrete.fhe.version import __version__; print(__version__)')"
printf '# veil: %s   concrete-python: %s   runs=%s   p_error=2^-40   cpus=%s\n' "$VEIL" "$CVER" "$RUNS" "$(nproc)"
printf '%-11s %3s %9s %9s %6s %9s %6s  %-30s %-30s %s\n' circuit thr veil_ms conc_ms ratio core_ms ratio \
    veil_params concrete_params "concrete busy_threads cpu/wall"
for C in tlu4 dot64_tlu4; do
    for T in 1 2; do
        V="$("$VEIL" bench circuit --circuit "$C" --runs "$RUNS" --threads "$T" --p-error "$P_ERROR" 2>/dev/null)" ||
            die "veil bench circuit --circuit $C --threads $T failed"
        Q="$(env OMP_NUM_THREADS="$T" OMP_THREAD_LIMIT="$T" RAYON_NUM_THREADS="$T" DFR_NUM_THREADS="$T" \
            OPENBLAS_NUM_THREADS="$T" MKL_NUM_THREADS="$T" \
            "$PY" "$HERE/concrete_side.py" --circuit "$C" --runs "$RUNS" --threads "$T" --p-error "$P_ERROR")" ||
            die "concrete_side.py --circuit $C --threads $T failed"
        vms="$(kv "$V" run_ms)" cms="$(kv "$Q" run_ms)" kms="$(kv "$Q" run_core_ms)"
        [ -n "$vms" ] && [ -n "$cms" ] || die "could not parse: '$V' / '$Q'"
        printf '%-11s %3s %9s %9s %6s %9s %6s  %-30s %-30s %s %s\n' "$C" "$T" "$vms" "$cms" \
            "$(awk -v a="$cms" -v b="$vms" 'BEGIN{printf "%.2f", a/b}')" "$kms" \
            "$(awk -v a="$kms" -v b="$vms" 'BEGIN{printf "%.2f", a/b}')" \
            "$(kv "$V" params)" "$(kv "$Q" params)" "$(kv "$Q" busy_threads)" "$(kv "$Q" cpu_per_wall)"
    done
done
