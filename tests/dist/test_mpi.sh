#!/usr/bin/env bash
# One inference spread over MPI ranks (src/dist/), on this machine: `mpirun --oversubscribe -np 2`,
# one thread per rank (VEIL_THREADS=1).
#  - veil run on bundled models (the QAT digits model with exact rounding: two precision
#    partitions; a two-input model with one input sent in the clear: a program of its own per
#    request) gives the single process's output ciphertexts byte for byte, the evaluation keys
#    read by each rank from the shared file (multi-value lookups: tests/dist/test_wave.c, and
#    `veil bench models --ranks 2` checks every bundled model so);
#  - veil predict --mode execute (keys made by rank 0 and sent to rank 1 compressed) gives the
#    single process's outputs value for value, and both ranks did lookups;
#  - a rank killed (kill -9) during a prediction: plain mpirun ends the job with an error; under
#    mpirun --enable-recovery rank 0 fails the prediction, naming the rank that stopped answering
#    within the deadline (VEIL_MPI_TIMEOUT); neither hangs;
#  - veil serve under mpirun: a prediction through veil client is right, both ranks worked on it;
#    after rank 1 is killed the next prediction answers 503 (the log names the rank), which the
#    client retries and rank 0 alone answers right; SIGTERM stops the server.
# Usage: test_mpi.sh BUILD_DIR SOURCE_DIR
set -u
B=$1
SRC=$2
V=$B/veil
command -v mpirun >/dev/null || { echo "test_mpi: mpirun is missing (scripts/install-deps installs openmpi-bin)" >&2; exit 1; }
"$V" run --mpi --help >/dev/null 2>"$B/mpi_probe.txt"
if grep -q "this build has no MPI" "$B/mpi_probe.txt"; then echo "test_mpi: veil was built without MPI" >&2; exit 1; fi
T=$(mktemp -d /tmp/veil_mpi_XXXXXX)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader,tcp OMPI_MCA_rmaps_base_oversubscribe=1
export VEIL_THREADS=1
MPIRUN=(mpirun --oversubscribe -np 2)
SPID=
cleanup() {
  [ -n "$SPID" ] && kill -9 "$SPID" 2>/dev/null
  pkill -9 -f "$T/" 2>/dev/null
  wait 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
fails=0
checks=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  checks=$((checks + 1))
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what" >&2; fails=$((fails + 1)); fi
}
waitfor() { # waitfor SECONDS COMMAND...: until it succeeds (every 0.05 s), at most SECONDS
  local lim=$1; shift
  local end=$((SECONDS + lim))
  until "$@"; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.05
  done
}
# the PID of rank R of an mpirun job whose command line holds MARK
rank_pid() {
  local p
  for p in $(pgrep -f "$2"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then echo "$p"; return 0; fi
  done
  return 1
}
rank1_did_lookups() { grep -Eq "rank 1: lookups=[1-9]" "$1"; }

# ---- veil run: the same output ciphertexts, byte for byte ----------------------------------------
D=$SRC/models/digits_qat
"$V" compile "$D/model.onnx" --inputset "$D/train.npy" --qat --n-bits-json '{"model_inputs": 4, "model_outputs": 4}' \
  --rounding-bits 6 --rounding-method exact -o "$T/qx" >/dev/null
W=$SRC/models/breast_cancer_two
"$V" compile "$W/model.onnx" --inputset "$W/train.npz" --rounding-bits 5 --clear-input b -o "$T/two" >/dev/null
for m in qx:"$D/test.npy" two:"$W/test.npz"; do
  name=${m%%:*}
  input=${m#*:}
  "$V" keygen "$T/$name" --keys "$T/k_$name" >/dev/null
  "$V" encrypt "$T/$name" --keys "$T/k_$name" --input "$input" --sample 3 -o "$T/ct_$name.veil" >/dev/null
  "$V" run "$T/$name" --eval-keys "$T/k_$name/eval.keys" --input "$T/ct_$name.veil" -o "$T/one_$name.veil" >"$T/one_$name.txt"
  timeout 600 "${MPIRUN[@]}" "$V" run "$T/$name" --eval-keys "$T/k_$name/eval.keys" --input "$T/ct_$name.veil" \
    -o "$T/two_$name.veil" >"$T/two_$name.txt" 2>"$T/two_$name.err"
  check "$name: veil run under mpirun -np 2 succeeds" [ $? -eq 0 ]
  check "$name: its output ciphertexts are the single process's, byte for byte" cmp -s "$T/one_$name.veil" "$T/two_$name.veil"
  check "$name: rank 1 bootstrapped some of the lookups" rank1_did_lookups "$T/two_$name.err"
  check "$name: rank 1 read the keys from the shared file (none sent)" grep -q "key_bytes=0 " "$T/two_$name.err"
  echo "  $name: $(cat "$T/one_$name.txt") | mpirun -np 2: $(cat "$T/two_$name.txt")"
  grep "MPI: ranks=" "$T/two_$name.err" | sed 's/^/  /'
done
"$V" decrypt "$T/qx" --keys "$T/k_qx" --input "$T/two_qx.veil" >"$T/dec_qx.txt"
"$V" predict "$T/qx" --input "$D/test.npy" --mode clear --limit 4 -o "$T/clear_qx.npy" >/dev/null
check "qx: the spread run decrypts to the clear prediction of sample 3" \
  grep -q "^argmax=$("$B/npy_argmax" "$T/clear_qx.npy" | sed -n 4p)$" "$T/dec_qx.txt"

# ---- veil predict --mode execute: keys made on rank 0, sent to rank 1 --------------------------
"$V" predict "$T/qx" --input "$D/test.npy" --mode execute --limit 2 -o "$T/p1.npy" >"$T/p1.txt"
timeout 600 "${MPIRUN[@]}" "$V" predict "$T/qx" --input "$D/test.npy" --mode execute --limit 2 -o "$T/p2.npy" \
  >"$T/p2.txt" 2>"$T/p2.err"
check "predict --mode execute under mpirun -np 2 succeeds" [ $? -eq 0 ]
check "its outputs are the single process's, value for value (exact rounding)" cmp -s "$T/p1.npy" "$T/p2.npy"
check "rank 1 got the keys from rank 0 (compressed)" grep -Eq "key_bytes=[1-9]" "$T/p2.err"
check "rank 1 bootstrapped some of the lookups" rank1_did_lookups "$T/p2.err"
echo "  one process: $(grep latency "$T/p1.txt") | mpirun -np 2: $(grep latency "$T/p2.txt")"

# ---- a rank killed during a prediction: an error, never a hang -----------------------------------
killed_run() { # killed_run LOG MPIRUN-OPTIONS...: predict on 20 samples, kill -9 rank 1 once keys are made
  local log=$1; shift
  timeout 300 mpirun --oversubscribe -np 2 "$@" "$V" predict "$T/qx" --input "$D/test.npy" --mode execute --limit 20 \
    >"$log.out" 2>"$log" &
  local job=$!
  waitfor 120 grep -q "^keygen:" "$log.out"
  local p
  p=$(rank_pid 1 "$T/qx") && kill -9 "$p"
  wait "$job"
  echo $? >"$log.rc"
}
killed_run "$T/kill_plain.log"
rc=$(cat "$T/kill_plain.log.rc")
check "plain mpirun: a killed rank ends the job with an error (rc $rc), not a hang" [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]
check "plain mpirun: it names the rank that died" grep -q "exited on signal 9" "$T/kill_plain.log"
VEIL_MPI_TIMEOUT=5 killed_run "$T/kill_rec.log" --enable-recovery
rc=$(cat "$T/kill_rec.log.rc")
# (under --enable-recovery Open MPI 4.1's mpirun exits 0 whatever the ranks return: rank 0's words tell)
check "mpirun --enable-recovery: the job ends (rc $rc), not a hang" [ "$rc" -ne 124 ]
check "mpirun --enable-recovery: rank 0 fails the prediction, naming the cause" \
  grep -q "veil predict: sample [0-9]*: .*another process of the distributed run" "$T/kill_rec.log"
check "mpirun --enable-recovery: and which rank stopped answering" grep -q "MPI: rank 1 of 2 did not" "$T/kill_rec.log"
check "mpirun --enable-recovery: no results printed" bash -c "! grep -q '^mode=execute' '$T/kill_rec.log.out'"
grep -h "MPI: rank 1 of 2\|exited on signal" "$T/kill_plain.log" "$T/kill_rec.log" | head -3 | sed 's/^/  /'

# ---- veil serve under mpirun ---------------------------------------------------------------------
# equal shares: rank 1 takes part in every batch, so the first request after it is killed meets its
# absence. Split by speed, a rank measured slow on a loaded machine may get none of a 16-lookup
# batch, and the request after the kill need never ask it: the likely cause of the one run (the
# sanitizer build, on a loaded machine) whose client saw no 503 here
VEIL_MPI_SPLIT=equal VEIL_MPI_TIMEOUT=5 timeout 600 mpirun --enable-recovery --oversubscribe -np 2 "$V" serve "$T/qx" --port 0 \
  --port-file "$T/port" --data "$T/data" --workers 1 >"$T/serve.log" 2>&1 &
SPID=$!
waitfor 120 test -s "$T/port" || { echo "FAILED: the MPI server did not start" >&2; cat "$T/serve.log" >&2; exit 1; }
URL=http://127.0.0.1:$(cat "$T/port")
"$V" predict "$T/qx" --input "$D/test.npy" --mode clear --limit 2 -o "$T/clear2.npy" >/dev/null
client() { "$V" client --url "$URL" --model qx --keys "$T/ck" --input "$D/test.npy" --limit 2 -o "$1" >"$1.txt" 2>&1; }
client "$T/c1.npy"
check "serve under mpirun: two predictions through veil client, the clear outputs value for value" cmp -s "$T/c1.npy" "$T/clear2.npy"
p=$(rank_pid 1 "$T/qx")
check "serve under mpirun: rank 1 runs" [ -n "$p" ]
[ -n "$p" ] && kill -9 "$p"
client "$T/c2.npy"
check "after rank 1 is killed: right again (the 503 retried, rank 0 alone)" cmp -s "$T/c2.npy" "$T/clear2.npy"
check "the client waited out a 503" grep -Eq "busy_retries=[1-9]" "$T/c2.npy.txt"
check "the server's log names the rank left out" grep -q "MPI: rank 1 of 2 did not" "$T/serve.log"
check "/metrics counted the 503" grep -Eq '^veil_errors_total\{route="predict",class="5xx"\} [1-9]' <(curl -s "$URL/metrics")
kill -TERM "$SPID"
wait "$SPID"
rc=$?
SPID=
check "SIGTERM stops the MPI server (rc $rc, not a hang)" [ "$rc" -ne 124 ]

echo "test_mpi: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
