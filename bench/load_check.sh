#!/usr/bin/env bash
# Load check: a local veil server (the bundled QAT digits model, W workers) gets REQUESTS encrypted
# predictions, CONCURRENCY at a time, from veil client. Prints throughput and latency percentiles
# (from the client), the server's 503 count, and checks that every request was answered (none
# lost) and that every decrypted output equals veil predict --mode clear on the same sample, value
# for value (the model rounds exactly, so execute must give clear's integers).
# Usage: bench/load_check.sh [BUILD_DIR] [REQUESTS] [CONCURRENCY] [WORKERS]
set -eu
B=${1:-build}
REQ=${2:-16}
CONC=${3:-4}
WORKERS=${4:-2}
SRC=$(cd "$(dirname "$0")/.." && pwd)
M=$SRC/models/digits_qat
T=$(mktemp -d /tmp/veil_load_XXXXXX)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
"$B/veil" compile "$M/model.onnx" --qat --n-bits-json '{"model_inputs":4,"model_outputs":4}' --rounding-bits 6 \
  --rounding-method exact --inputset "$M/train.npy" -o "$T/digits" >/dev/null
"$B/veil" serve "$T/digits" --port 0 --port-file "$T/port" --data "$T/data" --workers "$WORKERS" \
  >"$T/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
URL=http://127.0.0.1:$(cat "$T/port")
# keys made and uploaded once, outside the timed run
"$B/veil" client --url "$URL" --model digits --keys "$T/keys" --input "$M/test.npy" --limit 1 >/dev/null 2>&1
"$B/veil" client --url "$URL" --model digits --keys "$T/keys" --input "$M/test.npy" --limit "$REQ" \
  --concurrency "$CONC" --labels "$M/labels.npy" -o "$T/y.npy" >"$T/client.out" 2>"$T/client.err" || {
  echo "load_check: the client failed:"; tail -5 "$T/client.err"; exit 1; }
"$B/veil" predict "$T/digits" --input "$M/test.npy" --limit "$REQ" --mode clear -o "$T/yc.npy" >/dev/null
"$B/npy_argmax" "$T/y.npy" >"$T/p"
"$B/npy_argmax" "$T/yc.npy" >"$T/pc"
answered=$(wc -l <"$T/p")
wrong=$(paste -d' ' "$T/p" "$T/pc" | awk '$1 != $2' | wc -l)
same_values=no
cmp -s "$T/y.npy" "$T/yc.npy" && same_values=yes
busy=$(curl -s "$URL/metrics" | awk '/^veil_busy_total/ {print $2}')
echo "load_check: workers=$WORKERS $(cat "$T/client.out")"
echo "load_check: requests=$REQ answered=$answered lost=$((REQ - answered)) wrong_predictions_vs_clear=$wrong" \
  "outputs_equal_clear=$same_values server_503=$busy"
[ "$answered" -eq "$REQ" ] && [ "$wrong" -eq 0 ] && [ "$same_values" = yes ]
