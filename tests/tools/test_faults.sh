#!/usr/bin/env bash
# veil serve under faults, on the bundled QAT digits model over loopback. Each fault is injected at
# a point the test waits for (a file on disk, a gauge in /metrics), never after a guessed sleep:
#  - kill -9 during a key upload (the upload half on disk): the restarted server holds every
#    acknowledged key, has swept the half upload, and answers the client right without a new upload;
#  - kill -9 during a prediction, and during start-up: the same; while a key set loads, /metrics
#    answers (it reports the loading in progress);
#  - SIGTERM with a prediction in flight: it completes (the client gets a right answer), the server
#    exits 0 and refuses nothing it had accepted;
#  - clients that send headers slowly: while they hold their connections, others are answered; past
#    --header-timeout they are cut; the per-client connection cap refuses one more and recovers;
#  - the key storage quota reached (507, nothing stored, nothing left behind), then recovered
#    (a deletion frees room and the upload succeeds).
# Usage: test_faults.sh BUILD_DIR SOURCE_DIR
set -u
KEEP=${KEEP:-}
B=$1
SRC=$2
M=$SRC/models/digits_qat
T=$(mktemp -d /tmp/veil_faults_XXXXXX)
PID=
cleanup() {
  exec 3>&- 5<&- 6<&- 7<&- 2>/dev/null
  [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
  wait 2>/dev/null
  [ -n "$KEEP" ] || rm -rf "$T"
}
trap cleanup EXIT
fails=0
checks=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  checks=$((checks + 1))
  if ! "$@"; then echo "FAILED: $what" >&2; fails=$((fails + 1)); fi
}
# waitfor SECONDS COMMAND...: until the command succeeds (polled every 0.05 s), at most SECONDS
waitfor() {
  local lim=$1; shift
  local end=$((SECONDS + lim))
  until "$@"; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.05
  done
}
metric() { curl -s --max-time 5 "$URL/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
in_flight() { [ "$(metric veil_in_flight)" = "${1:-1}" ]; }
start() { # start [OPTIONS]: the server on a free port; returns once it listens (its port file)
  rm -f "$T/port"
  "$B/veil" serve "$T/digits" --port "${PORT:-0}" --port-file "$T/port" --data "$T/data" --workers 1 --queue 2 \
    "$@" >>"$T/serve.log" 2>&1 &
  PID=$!
  waitfor 60 test -s "$T/port" || { echo "FAILED: the server did not start" >&2; exit 1; }
  PORT=$(cat "$T/port")
  URL=http://127.0.0.1:$PORT
}
kill9() { kill -9 "$PID"; wait "$PID" 2>/dev/null; PID=; }
# the store holds exactly N key sets, each ID.keys with its ID.meta, and nothing else
store_clean() {
  local n=$1 f files=0 bad=0
  for f in "$T/data/keys"/* "$T/data/keys"/.[!.]*; do
    [ -e "$f" ] || continue
    files=$((files + 1))
    case $(basename "$f") in
      *.keys) [ -e "${f%.keys}.meta" ] || bad=1 ;;
      *.meta) [ -e "${f%.meta}.keys" ] || bad=1 ;;
      *) bad=1 ;;
    esac
  done
  [ $bad = 0 ] && [ $files = $((2 * n)) ] || { ls -la "$T/data/keys" >&2; return 1; }
}
# predict SAMPLE_LIMIT OUT: client A through the server; its outputs are checked against simulate
predict() {
  "$B/veil" client --url "$URL" --model digits --keys "$T/keysA" --input "$M/test.npy" --limit "$1" -o "$2" \
    >"$2.out" 2>"$2.err"
}
right() { # right OUT N: the client ran N samples and its outputs equal simulate's, value for value
  grep -q "samples=$2 ok=$2" "$1.out" && cmp -s "$1" "$T/sim$2.npy"
}

"$B/veil" compile "$M/model.onnx" --qat --n-bits-json '{"model_inputs":4,"model_outputs":4}' --rounding-bits 6 \
  --rounding-method exact --inputset "$M/train.npy" -o "$T/digits" >/dev/null || exit 1
for n in 1 2; do "$B/veil" predict "$T/digits" --input "$M/test.npy" --limit $n --mode simulate -o "$T/sim$n.npy" >/dev/null; done
"$B/veil" keygen "$T/digits" --keys "$T/keysB" >/dev/null || exit 1

start
predict 1 "$T/y0.npy"
check "client A: keys uploaded, answer right" sh -c "grep -q 'evaluation keys uploaded' '$T/y0.npy.err'"
check "client A's answer equals simulate" right "$T/y0.npy" 1
KEYA=$(awk '{print $2}' "$T/keysA/key_ids")

# 1. kill -9 in the middle of a key upload: the body is held open half sent (a FIFO)
mkfifo "$T/fifo"
curl -s -o "$T/up.out" -X POST -H 'Content-Type: application/octet-stream' -T "$T/fifo" "$URL/v1/keys?model=digits" &
UP=$!
exec 3>"$T/fifo"
head -c 50000000 "$T/keysB/eval.keys" >&3
check "an upload is half on disk" waitfor 30 sh -c "ls -A '$T/data/keys' | grep -q '^\.upload-'"
kill9
exec 3>&-
wait $UP 2>/dev/null
start
check "after kill -9 during an upload: the half upload is swept, A's key set is whole" store_clean 1
check "after kill -9 during an upload: A's key is still held" test "$(metric veil_keys_held)" = 1
predict 1 "$T/y1.npy"
check "after kill -9 during an upload: A's answer is right ($(tail -1 "$T/y1.npy.err"))" right "$T/y1.npy" 1
check "after kill -9 during an upload: no second upload" sh -c "! grep -q 'evaluation keys uploaded' '$T/y1.npy.err'"

# 2. kill -9 during a prediction; while its key set loads (seconds), the server answers others: the
# /metrics answer that reports the loading was itself served during it (a fresh start: no key set
# is in memory yet)
kill -TERM "$PID"; wait "$PID"; PID=
start
predict 2 "$T/y2.npy" &
CL=$!
check "metrics answered while a key set loads" waitfor 60 sh -c "curl -s --max-time 5 '$URL/metrics' | grep -q '^veil_keys_loading 1'"
check "a prediction is in flight" waitfor 60 in_flight 1
kill9
wait $CL
check "the client of the killed server reports a failure" sh -c "! grep -q 'samples=2 ok=2' '$T/y2.npy.out'"
start
check "after kill -9 during a prediction: the store is whole" store_clean 1
predict 2 "$T/y3.npy"
check "after kill -9 during a prediction: A's answers are right ($(tail -1 "$T/y3.npy.err"))" right "$T/y3.npy" 2
check "after kill -9 during a prediction: no second upload" sh -c "! grep -q 'evaluation keys uploaded' '$T/y3.npy.err'"

# 3. kill -9 during start-up (before it listens), then a normal start
kill -TERM "$PID"; wait "$PID"; PID=
rm -f "$T/port"
"$B/veil" serve "$T/digits" --port 0 --port-file "$T/port" --data "$T/data" >>"$T/serve.log" 2>&1 &
PID=$!
kill9
start
check "after kill -9 at start-up: the store is whole" store_clean 1
check "after kill -9 at start-up: A's key is held" test "$(metric veil_keys_held)" = 1

# 4. SIGTERM with a prediction in flight: it completes, then the server exits 0
predict 1 "$T/y4.npy" &
CL=$!
check "a prediction is in flight before SIGTERM" waitfor 60 in_flight 1
kill -TERM "$PID"
wait $CL
check "the prediction in flight at SIGTERM completed right ($(tail -1 "$T/y4.npy.err"))" right "$T/y4.npy" 1
wait "$PID"
rc=$?
PID=
check "the server exited 0 after SIGTERM (rc $rc)" test $rc = 0
check "the server logged a clean stop" grep -q "stopped: every request in progress finished" "$T/serve.log"

# 5. slow clients: three connections that never finish their headers (--per-client 3)
start --per-client 3 --header-timeout 2
exec 5<>"/dev/tcp/127.0.0.1/$PORT" 6<>"/dev/tcp/127.0.0.1/$PORT" 7<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /v1/keys?model=digits HTTP/1.1\r\nHost: x\r\n' >&5
printf 'GET /healthz HTTP/1.1\r\nHo' >&6
printf 'G' >&7
t0=$(date +%s%N)
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/healthz")
check "a fourth connection from the same address is refused while three are held (got $code)" test "$code" != 200
check "the slow connections are cut past the header deadline" waitfor 20 sh -c "[ \"\$(curl -s --max-time 5 '$URL/metrics' | awk '\$1 == \"veil_connections_cut_total\" {print \$2}')\" -ge 3 ] 2>/dev/null"
exec 5<&- 6<&- 7<&-
status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/healthz")
check "after the cut, others are answered (got $status)" test "$status" = 200
# one slow client does not block others: health and a prediction go on while it holds its connection
exec 5<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /healthz HTTP/1.1\r\n' >&5
t0=$(date +%s%N)
status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL/healthz")
ms=$((($(date +%s%N) - t0) / 1000000))
check "health answered while a slow client holds a connection (got $status in $ms ms)" test "$status" = 200
predict 1 "$T/y5.npy"
check "a prediction answered while a slow client holds a connection" right "$T/y5.npy" 1
exec 5<&-
kill -TERM "$PID"; wait "$PID"; PID=

# 6. the quota: B's keys do not fit beside A's (507, nothing left), then A's deletion frees room
BYTES=$(stat -c %s "$T/keysB/eval.keys")
start --quota $((BYTES + BYTES / 2))
code=$(curl -s -o "$T/q.out" -w '%{http_code}' -X POST -T "$T/keysB/eval.keys" "$URL/v1/keys?model=digits")
check "quota reached: 507 ($code: $(cat "$T/q.out"))" sh -c "[ $code = 507 ] && grep -q quota '$T/q.out'"
check "quota reached: the store is consistent, nothing left behind" store_clean 1
code=$(curl -s -o "$T/q.out" -w '%{http_code}' -X DELETE "$URL/v1/keys/$KEYA")
check "A's key deleted ($code)" test "$code" = 200
code=$(curl -s -o "$T/q.out" -w '%{http_code}' -X POST -T "$T/keysB/eval.keys" "$URL/v1/keys?model=digits")
check "after the deletion, B's upload is stored ($code: $(cat "$T/q.out"))" test "$code" = 201
check "the store holds B's key set only" store_clean 1
kill -TERM "$PID"; wait "$PID"; PID=
echo "test_faults: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
