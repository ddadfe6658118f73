#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, -DVEIL_FUZZ=ON) and runs each one.
#   run.sh smoke SOURCE_DIR BUILD_DIR FUZZ_DIR [RUNS]     each target for RUNS executions (default
#          20000; the ONNX target a twentieth), seed 1, from the committed seeds and regression
#          inputs: `make test` (ctest fuzz_smoke)
#   run.sh fuzz  SOURCE_DIR BUILD_DIR FUZZ_DIR [SECONDS]  each target for SECONDS (default 600):
#          `make fuzz`; what it finds new stays in FUZZ_DIR/corpus/TARGET for the next run
# BUILD_DIR holds the release `veil` that compiles the models the server targets serve. Prints,
# per target, executions, coverage (libFuzzer's cov: edges and ft: features), corpus size and
# crashes; a crash leaves its input in FUZZ_DIR/artifacts/TARGET/ and fails the run. A crash input,
# once fixed, goes to tests/fuzz/regress/TARGET/ and runs in every smoke run.
set -uo pipefail
mode=$1
SRC=$(cd "$2" && pwd)
B=$(cd "$3" && pwd)
F=$4
amount=${5:-}
TARGETS=(container npy onnx serve json)
command -v clang >/dev/null || { echo "fuzz: clang is missing (scripts/install-deps installs it)" >&2; exit 1; }
mkdir -p "$F"
F=$(cd "$F" && pwd)
cmake -S "$SRC" -B "$F" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DVEIL_FUZZ=ON -DVEIL_WERROR=ON >"$F/configure.log" 2>&1 ||
  { cat "$F/configure.log" >&2; exit 1; }
cmake --build "$F" -j "$(nproc)" --target "${TARGETS[@]/#/fuzz_}" >"$F/build.log" 2>&1 || { tail -30 "$F/build.log" >&2; exit 1; }
# the models the server targets serve: a logistic regression (leveled) and a two-input model
# with an input sent in the clear (lookups, so evaluation keys)
M=$F/models
S=$SRC/models
if [ ! -s "$M/lr/server.veil" ] || [ "$B/veil" -nt "$M/lr/server.veil" ]; then
  mkdir -p "$M"
  "$B/veil" compile "$S/logreg_breast_cancer/model.onnx" --inputset "$S/logreg_breast_cancer/train.npy" -o "$M/lr" >/dev/null &&
    "$B/veil" compile "$S/breast_cancer_two/model.onnx" --inputset "$S/breast_cancer_two/train.npz" --rounding-bits 5 \
      --clear-input b -o "$M/two" >/dev/null || { echo "fuzz: cannot compile the served models" >&2; exit 1; }
fi
export VEIL_FUZZ_MODELS=$M/lr:$M/two
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fail=0
printf '%-10s %12s %8s %8s %8s %8s\n' target executions cov ft corpus crashes
for t in "${TARGETS[@]}"; do
  work=$F/corpus/$t
  art=$F/artifacts/$t
  rm -rf "$art" # a crash input of an earlier run was reported then
  mkdir -p "$work" "$art"
  dirs=("$work" "$SRC/tests/fuzz/corpus/$t")
  [ -d "$SRC/tests/fuzz/regress/$t" ] && dirs+=("$SRC/tests/fuzz/regress/$t")
  opts=(-dict="$SRC/tests/fuzz/dict/$t.dict" -artifact_prefix="$art/" -rss_limit_mb=3072 -timeout=60
        -max_len=65536 -print_final_stats=1)
  if [ "$mode" = smoke ]; then
    runs=${amount:-20000}
    [ "$t" = onnx ] && runs=$((runs / 20)) # each compile takes about half a second under the sanitizers
    opts+=(-runs="$runs" -seed=1)
  else
    opts+=(-max_total_time="${amount:-600}")
  fi
  "$F/fuzz_$t" "${opts[@]}" "${dirs[@]}" >"$F/$t.log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$F/$t.log" | awk '{print $2}')
  cov=$(grep -oE '(DONE|INITED|pulse|NEW|REDUCE) +cov: [0-9]+ ft: [0-9]+' "$F/$t.log" | tail -1)
  corpus=$(find "$work" -type f | wc -l)
  # a slow unit (libFuzzer's slow-unit-*: one input over 10 s once) is a warning, not a crash:
  # on a loaded machine any input can be; it is replayed below to tell
  crashes=$(find "$art" -type f ! -name 'slow-unit-*' | wc -l)
  for su in "$art"/slow-unit-*; do
    [ -e "$su" ] || continue
    t0=$(date +%s.%N)
    "$F/fuzz_$t" "$su" >/dev/null 2>&1
    echo "fuzz_$t: slow unit $(basename "$su") replays in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}') s (the first run was slowed by the machine, or it is a real stall)" >&2
  done
  printf '%-10s %12s %8s %8s %8s %8s\n' "$t" "${execs:-?}" "$(echo "$cov" | awk '{print $3}')" \
    "$(echo "$cov" | awk '{print $5}')" "$corpus" "$crashes"
  if [ $rc -ne 0 ] || [ "$crashes" -gt 0 ]; then
    echo "fuzz_$t failed (rc $rc): $(grep -m1 -E 'ERROR|SUMMARY|runtime error|abort' "$F/$t.log")" >&2
    echo "  log: $F/$t.log; inputs: $art" >&2
    fail=1
  fi
done
exit $fail
