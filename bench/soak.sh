#!/usr/bin/env bash
# Soak: MINUTES (default 15) of mixed traffic against one local veil server, over loopback:
#   - CLIENTS clients (default 3) with their own keys predict the QAT digits model (lookups,
#     evaluation keys; exact rounding, so every answer must equal `veil predict --mode simulate`
#     value for value), some deleting their key now and then (the next run uploads again);
#   - predictions of a leveled model (no keys) by curl, timed, each answer equal to the first;
#   - malformed requests (bad JSON, truncated ciphertexts, garbage keys, unknown routes);
#   - an idle client whose key expires (--key-expiry), then comes back;
#   - restarts: SIGTERM (in-flight requests finish) and now and then kill -9.
# Every few seconds it samples the server's RSS and open descriptors. It fails on any wrong
# answer, any acknowledged key lost (a client that uploads again when its key was neither deleted
# nor expired), any 5xx other than 503/507, or RSS / descriptors growing without bound (the last
# third's median above the first third's by half again plus 64 MB, or 16 descriptors). Prints:
# requests served, answers checked, faults injected, RSS and fd (min/median/max), p50/p99 latency.
# Usage: bench/soak.sh [BUILD_DIR] [MINUTES] [CLIENTS]     (make soak)
set -u
B=$(cd "${1:-build}" && pwd)
MIN=${2:-15}
NCL=${3:-3}
SRC=$(cd "$(dirname "$0")/.." && pwd)
S=$SRC/models
T=$(mktemp -d /tmp/veil_soak_XXXXXX)
PID=
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  [ -s "$T/pid" ] && kill -9 "$(cat "$T/pid")" 2>/dev/null
  wait 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
END=$(($(date +%s) + MIN * 60))
log() { echo "soak: $*" >&2; }

# the QAT digits model with exact rounding (as test_serve): execute gives simulate's values exactly
"$B/veil" compile "$S/digits_qat/model.onnx" --qat --n-bits-json '{"model_inputs":4,"model_outputs":4}' --rounding-bits 6 \
  --rounding-method exact --inputset "$S/digits_qat/train.npy" -o "$T/two" >/dev/null || exit 1
"$B/veil" compile "$S/logreg_breast_cancer/model.onnx" --inputset "$S/logreg_breast_cancer/train.npy" -o "$T/lr" >/dev/null || exit 1
for n in 1 2 3 4; do
  "$B/veil" predict "$T/two" --input "$S/digits_qat/test.npy" --limit $n --mode simulate -o "$T/sim$n.npy" >/dev/null || exit 1
done
"$B/veil" keygen "$T/lr" --keys "$T/klr" >/dev/null
"$B/veil" encrypt "$T/lr" --keys "$T/klr" --input "$S/logreg_breast_cancer/test.npy" -o "$T/lr.ct" >/dev/null

start() {
  rm -f "$T/port"
  "$B/veil" serve "$T/two" "$T/lr" --port "${PORT:-0}" --port-file "$T/port" --data "$T/data" --workers 2 --queue 16 \
    --key-expiry 45 --grace 60 >>"$T/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 600); do [ -s "$T/port" ] && break; sleep 0.1; done
  PORT=$(cat "$T/port")
  echo "$PID" >"$T/pid"
}
start
URL=http://127.0.0.1:$PORT
echo "$URL" >"$T/url"

# a client: predictions of 1..4 samples, checked against simulate; now and then it deletes its key
client() {
  local i=$1 n k=0 runs=0
  while [ "$(date +%s)" -lt "$END" ]; do
    n=$(((RANDOM % 4) + 1))
    k=$((k + 1))
    if "$B/veil" client --url "$URL" --model two --keys "$T/k$i" --input "$S/digits_qat/test.npy" --limit $n \
      -o "$T/y$i.npy" >"$T/c$i.out" 2>"$T/c$i.err"; then
      if grep -q "samples=$n ok=$n" "$T/c$i.out" && cmp -s "$T/y$i.npy" "$T/sim$n.npy"; then
        echo ok >>"$T/answers"
      else
        echo "client $i run $k: wrong answer ($(tail -1 "$T/c$i.err"))" >>"$T/wrong"
      fi
      if grep -q "evaluation keys uploaded" "$T/c$i.err"; then
        if [ -e "$T/k$i.had" ] && [ ! -e "$T/k$i.gone" ]; then
          echo "client $i run $k: uploaded again though its key was neither deleted nor expired" >>"$T/lost"
        fi
        touch "$T/k$i.had"
        rm -f "$T/k$i.gone"
      fi
    else
      echo "client $i run $k: $(tail -1 "$T/c$i.err")" >>"$T/retried" # the server was restarting: not an answer
    fi
    if [ $((RANDOM % 6)) = 0 ] && [ -e "$T/k$i/key_ids" ]; then
      key=$(awk '{print $2}' "$T/k$i/key_ids")
      [ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$(cat "$T/url")/v1/keys/$key")" = 200 ] && touch "$T/k$i.gone" &&
        echo del >>"$T/faults"
      true
    fi
  done
}
# the leveled model by curl: timed, every answer equal to the first
leveled() {
  local code t
  while [ "$(date +%s)" -lt "$END" ]; do
    t=$(curl -s -o "$T/lr.ans" -w '%{http_code} %{time_total}' --max-time 60 -X POST --data-binary @"$T/lr.ct" \
      "$(cat "$T/url")/v1/models/lr/predict")
    code=${t% *}
    if [ "$code" = 200 ]; then
      [ -e "$T/lr.first" ] || cp "$T/lr.ans" "$T/lr.first"
      if cmp -s "$T/lr.ans" "$T/lr.first"; then echo "${t#* }" >>"$T/lat"; echo ok >>"$T/answers"
      else echo "leveled: a different answer" >>"$T/wrong"; fi
    elif [ "$code" = 503 ] || [ "$code" = 000 ]; then echo "leveled $code" >>"$T/retried"
    else echo "leveled: HTTP $code" >>"$T/wrong"; fi
  done
}
# malformed requests: each must be a 4xx (or 503 while busy / 000 while restarting)
malformed() {
  local u code
  while [ "$(date +%s)" -lt "$END" ]; do
    u=$(cat "$T/url")
    for req in "-X POST -d {\"inputs\":[1, $u/v1/models/two/simulate" \
      "-X POST --data-binary @$T/two/client.veil $u/v1/models/two/predict?key_id=0123456789abcdef0123456789abcdef" \
      "-X POST -H Content-Type:application/octet-stream --data-binary @$T/lr/server.veil $u/v1/keys?model=two" \
      "-X POST --data-binary @$T/lr.ct $u/v1/models/two/predict?key_id=zz" "$u/v2/nothing" "-X PUT $u/v1/models"; do
      # shellcheck disable=SC2086
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 $req)
      case $code in 4??) echo mal >>"$T/faults" ;; 503|000) ;; *) echo "malformed request answered $code: $req" >>"$T/wrong" ;; esac
    done
    sleep 1
  done
}
# the idle client: predicts, sleeps past the expiry, comes back (its key expired: it uploads again)
idle() {
  while [ "$(date +%s)" -lt $((END - 60)) ]; do
    "$B/veil" client --url "$(cat "$T/url")" --model two --keys "$T/kidle" --input "$S/digits_qat/test.npy" \
      --limit 1 >"$T/idle.out" 2>"$T/idle.err" && echo ok >>"$T/answers" && echo exp >>"$T/faults"
    sleep 50
  done
}
# restarts: SIGTERM every ~90 s, every third one kill -9
restarts() {
  local r=0
  while [ "$(date +%s)" -lt $((END - 30)) ]; do
    sleep 90
    [ "$(date +%s)" -lt $((END - 30)) ] || break
    r=$((r + 1))
    local p
    p=$(cat "$T/pid")
    if [ $((r % 3)) = 0 ]; then kill -9 "$p"; echo kill9 >>"$T/faults"; else kill -TERM "$p"; echo term >>"$T/faults"; fi
    while kill -0 "$p" 2>/dev/null; do sleep 0.2; done
    start
  done
}
# sampling: RSS (kB) and open descriptors every 5 s
sample() {
  while [ "$(date +%s)" -lt "$END" ]; do
    local p
    p=$(cat "$T/pid")
    # a server that is exiting (a restart) has no VmRSS line and no descriptors left: no sample
    local rss fds
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null)
    fds=$(ls "/proc/$p/fd" 2>/dev/null | wc -l)
    if [ -n "$rss" ] && [ "$fds" -gt 0 ] && kill -0 "$p" 2>/dev/null; then
      echo "$rss $fds $(date +%s)" >>"$T/samples"
    fi
    sleep 5
  done
}
touch "$T/answers" "$T/wrong" "$T/lost" "$T/retried" "$T/faults" "$T/lat" "$T/samples"
for i in $(seq "$NCL"); do client "$i" & pids+=($!); done
leveled & pids+=($!)
malformed & pids+=($!)
idle & pids+=($!)
restarts & pids+=($!)
sample & pids+=($!)
log "running $MIN minute(s): $NCL clients, leveled predictions, malformed requests, an idle client, restarts"
for p in "${pids[@]}"; do wait "$p"; done
pids=()
served=$(grep -cE ' (200|201) [0-9.]+ s' "$T/serve.log")
errs5=$(grep -E ' 5[0-9][0-9] [0-9.]+ s' "$T/serve.log" | grep -vE ' (503|507) ' | wc -l)
pct() { sort -n | awk -v q="$1" '{a[NR]=$1} END {if (NR) {i=int(q*NR); if (i<1) i=1; print a[i]} else print "-"}'; }
stats() { sort -n | awk '{a[NR]=$1} END {if (NR) printf "%s/%s/%s", a[1], a[int((NR+1)/2)], a[NR]; else printf "-"}'; }
n=$(wc -l <"$T/samples")
third=$((n / 3))
rss_first=$(head -$third "$T/samples" | awk '{print $1}' | pct 0.5)
rss_last=$(tail -$third "$T/samples" | awk '{print $1}' | pct 0.5)
fd_first=$(head -$third "$T/samples" | awk '{print $2}' | pct 1)
fd_last=$(tail -$third "$T/samples" | awk '{print $2}' | pct 1)
echo "soak: $MIN min, requests served $served (2xx), answers checked $(wc -l <"$T/answers"), wrong $(wc -l <"$T/wrong"), keys lost $(wc -l <"$T/lost"), retried while restarting or busy $(wc -l <"$T/retried")"
echo "soak: faults injected: $(grep -c term "$T/faults") SIGTERM restarts, $(grep -c kill9 "$T/faults") kill -9, $(grep -c mal "$T/faults") malformed requests (4xx), $(grep -c del "$T/faults") key deletions, $(grep -c exp "$T/faults") idle returns past the expiry"
echo "soak: RSS kB min/median/max $(awk '{print $1}' "$T/samples" | stats) (first third median $rss_first, last $rss_last); open fds min/median/max $(awk '{print $2}' "$T/samples" | stats) ($n samples)"
echo "soak: leveled predict latency p50 $(pct 0.5 <"$T/lat") s, p99 $(pct 0.99 <"$T/lat") s over $(wc -l <"$T/lat") requests; 5xx other than 503/507: $errs5"
fail=0
[ -s "$T/wrong" ] && { log "wrong answers:"; head -5 "$T/wrong" >&2; fail=1; }
[ -s "$T/lost" ] && { log "lost keys:"; head -5 "$T/lost" >&2; fail=1; }
[ "$errs5" -gt 0 ] && { log "5xx answers:"; grep -E ' 5[0-9][0-9] [0-9.]+ s' "$T/serve.log" | grep -vE ' (503|507) ' | head -5 >&2; fail=1; }
if [ "$third" -gt 0 ]; then
  awk -v a="$rss_first" -v b="$rss_last" 'BEGIN {exit !(b > a * 1.5 + 65536)}' && { log "RSS grows: $rss_first -> $rss_last kB"; fail=1; }
  [ "$fd_last" -gt $((fd_first + 16)) ] && { log "descriptors grow: $fd_first -> $fd_last"; fail=1; }
fi
[ "$(wc -l <"$T/answers")" -gt 0 ] || { log "no answer at all"; fail=1; }
[ $fail = 0 ] && echo "soak: passed" || echo "soak: FAILED"
exit $fail
