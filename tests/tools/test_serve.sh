#!/usr/bin/env bash
# veil serve + veil client on the bundled QAT digits model (and a logistic regression, and the
# two-input model: every input in one request, every output in one answer), over loopback:
#  - veil-serve links no secret-key code (its symbols);
#  - the client's decrypted outputs equal `veil predict --mode simulate` on the same samples, value
#    for value (the model rounds exactly, so no value sits at a midpoint the noise could tip);
#  - a restarted server still holds the uploaded keys (the client does not upload again);
#  - refusals: unknown route, unknown model, key of another model, a secret key uploaded as
#    evaluation keys, truncated keys, malformed key id, oversized body, simulate while off, bad
#    JSON; the server stays healthy and still predicts afterwards;
#  - a deleted key is uploaded again by the client.
# Usage: test_serve.sh BUILD_DIR SOURCE_DIR
set -u
KEEP=${KEEP:-}
B=$1
SRC=$2
M=$SRC/models/digits_qat
S=$SRC/models
T=$(mktemp -d /tmp/veil_serve_XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; [ -n "$KEEP" ] || rm -rf "$T"; }
trap cleanup EXIT
fails=0
checks=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  checks=$((checks + 1))
  if ! "$@"; then echo "FAILED: $what" >&2; fails=$((fails + 1)); fi
}
# status CODE PATTERN CURL-ARGS...: the answer has that HTTP status and a JSON error matching PATTERN
status() {
  local code=$1 pattern=$2; shift 2
  local got
  got=$(curl -s -o "$T/body" -w '%{http_code}' "$@")
  checks=$((checks + 1))
  if [ "$got" != "$code" ] || ! grep -q -- "$pattern" "$T/body"; then
    echo "FAILED: curl $* answered $got (want $code): $(cat "$T/body")" >&2
    fails=$((fails + 1))
  fi
}
start() { # start PORT [OPTIONS]: the server on PORT (0: a free one)
  local port=$1; shift
  rm -f "$T/port"
  "$B/veil" serve "$T/digits" "$T/other" "$T/lr" "$T/two" --port "$port" --port-file "$T/port" --data "$T/data" --workers 1 --queue 0 \
    --max-body 65536 "$@" >>"$T/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 600); do [ -s "$T/port" ] && break; sleep 0.1; done # its readiness signal
  URL=http://127.0.0.1:$(cat "$T/port")
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null; PID=; }

# the server binary holds no secret-key code
syms=$(nm "$B/veil-serve" | grep -E 'veil_(secret_key_|lwe_encrypt|lwe_phase|glwe_encrypt|ggsw_encrypt|eval_keys_new|circuit_(keygen|encrypt|decrypt)|client_|model_)' || true)
check "veil-serve links no secret-key code: $syms" test -z "$syms"

# two models: digits (exact rounding), and "other" (another compilation: other parameters, other id)
"$B/veil" compile "$M/model.onnx" --qat --n-bits-json '{"model_inputs":4,"model_outputs":4}' --rounding-bits 6 \
  --rounding-method exact --inputset "$M/train.npy" -o "$T/digits" >/dev/null
"$B/veil" compile "$M/model.onnx" --qat --n-bits-json '{"model_inputs":4,"model_outputs":4}' --rounding-bits 5 \
  --inputset "$M/train.npy" -o "$T/other" >/dev/null
# and a leveled model (a logistic regression: no lookups, no evaluation keys)
"$B/veil" compile "$S/logreg_breast_cancer/model.onnx" --inputset "$S/logreg_breast_cancer/train.npy" -o "$T/lr" >/dev/null
# and a model of two inputs, b sent in the clear (rounded to 5 bits: N = 2^12, small keys)
"$B/veil" compile "$S/breast_cancer_two/model.onnx" --inputset "$S/breast_cancer_two/train.npz" --rounding-bits 5 \
  --clear-input b -o "$T/two" >/dev/null
start 0
check "server listening" test -s "$T/port"
# every output in one answer: the classifier's label and probabilities, into one .npz, equal to
# clear's value for value (leveled: exact)
"$B/veil" client --url "$URL" --model lr --keys "$T/lrkeys" --input "$S/logreg_breast_cancer/test.npy" --limit 5 \
  -o "$T/lr.npz" >/dev/null 2>"$T/lr2.err"
"$B/veil" predict "$T/lr" --input "$S/logreg_breast_cancer/test.npy" --limit 5 --mode clear -o "$T/lrc.npz" >/dev/null
for out in label probabilities; do
  check "served $out = clear $out" sh -c "'$B/npy_argmax' --values '$T/lr.npz' $out >'$T/a' && '$B/npy_argmax' --values '$T/lrc.npz' $out >'$T/b' && cmp -s '$T/a' '$T/b' && [ \$(wc -l <'$T/a') -eq 5 ]"
done
# two inputs in one request, b in the clear (one --input each, and one .npz of both): sample 4's clear scores lie 6
# rounded steps apart, so approximate rounding cannot change its class
"$B/veil" client --url "$URL" --model two --keys "$T/twokeys" --input "$S/breast_cancer_two/test_a.npy" \
  --input "$S/breast_cancer_two/test_b.npy" --limit 5 -o "$T/two.npy" >"$T/two.out" 2>"$T/two.err"
check "two inputs served: $(tail -2 "$T/two.err")" grep -q "samples=5 ok=5" "$T/two.out"
"$B/veil" client --url "$URL" --model two --keys "$T/twokeys" --input "$S/breast_cancer_two/test.npz" --limit 5 \
  -o "$T/twoz.npz" >"$T/twoz.out" 2>"$T/twoz.err"
check "two inputs from one .npz: $(tail -2 "$T/twoz.err")" grep -q "samples=5 ok=5" "$T/twoz.out"
"$B/veil" predict "$T/two" --input "$S/breast_cancer_two/test.npz" --limit 5 --mode clear -o "$T/twoc.npy" >/dev/null
check "two inputs: served class = clear class (sample 4)" sh -c "[ \"\$('$B/npy_argmax' '$T/two.npy' | sed -n 5p)\" = \"\$('$B/npy_argmax' '$T/twoc.npy' | sed -n 5p)\" ] && [ \"\$('$B/npy_argmax' '$T/twoz.npz' y | sed -n 5p)\" = \"\$('$B/npy_argmax' '$T/twoc.npy' | sed -n 5p)\" ]"
"$B/veil" client --url "$URL" --model lr --keys "$T/lrkeys" --input "$S/logreg_breast_cancer/test.npy" --limit 20 \
  --labels "$S/logreg_breast_cancer/labels.npy" >"$T/lr.out" 2>"$T/lr.err"
"$B/veil" predict "$T/lr" --input "$S/logreg_breast_cancer/test.npy" --limit 20 \
  --labels "$S/logreg_breast_cancer/labels.npy" --mode clear >"$T/lr_clear.out"
check "leveled model served: $(tail -2 "$T/lr.err")" grep -q "samples=20 ok=20" "$T/lr.out"
check "leveled model: no evaluation keys made or uploaded" sh -c "! test -e '$T/lrkeys/eval.keys' && grep -q 'no evaluation keys to upload' '$T/lr.err' && ! grep -q 'keys uploaded' '$T/lr.err'"
check "leveled model: served accuracy = clear accuracy ($(grep -o 'accuracy=[0-9.]*' "$T/lr.out"))" \
  test "$(grep -o 'accuracy=[0-9.]*' "$T/lr.out")" = "$(grep -o 'accuracy=[0-9.]*' "$T/lr_clear.out")"
status 200 '"status":"ok"' "$URL/healthz"
status 200 '"name":"digits"' "$URL/v1/models"

# predictions through the server equal simulate on the same samples
N=3
[ -n "${VEIL_TEST_QUICK:-}" ] && N=1 # sanitizer builds: one sample each time
"$B/veil" client --url "$URL" --model digits --keys "$T/keys" --input "$M/test.npy" --limit $N -o "$T/y.npy" \
  >"$T/client.out" 2>"$T/client.err"
check "client run: $(tail -3 "$T/client.err")" grep -q "samples=$N ok=$N" "$T/client.out"
check "keys uploaded once" grep -q "evaluation keys uploaded" "$T/client.err"
check "secret key mode 0600" test "$(stat -c %a "$T/keys/secret.key")" = 600
"$B/veil" predict "$T/digits" --input "$M/test.npy" --limit $N --mode simulate -o "$T/ys.npy" >/dev/null
"$B/npy_argmax" "$T/y.npy" >"$T/pred_client"
"$B/npy_argmax" "$T/ys.npy" >"$T/pred_sim"
check "client outputs = simulate outputs, value for value" cmp -s "$T/y.npy" "$T/ys.npy"
check "client predictions = simulate predictions" cmp -s "$T/pred_client" "$T/pred_sim"
check "$N predictions" test "$(wc -l <"$T/pred_client")" = $N
KEY=$(awk '{print $2}' "$T/keys/key_ids")
status 200 '"model":"digits"' "$URL/v1/keys/$KEY"

# refusals, and the server goes on
status 404 'unknown route' "$URL/v2/nothing"
status 404 "unknown model 'nope'" -X POST --data-binary @"$T/keys/model_id" "$URL/v1/models/nope/predict?key_id=$KEY"
status 403 "uploaded for model 'digits', not 'other'" -X POST --data-binary @"$T/keys/model_id" \
  "$URL/v1/models/other/predict?key_id=$KEY"
status 404 'unknown key id' -X POST --data-binary @"$T/keys/model_id" \
  "$URL/v1/models/digits/predict?key_id=0123456789abcdef0123456789abcdef"
status 400 'malformed key id' -X POST --data-binary @"$T/keys/model_id" "$URL/v1/models/digits/predict?key_id=xyz"
status 400 'expected ciphertexts, got a secret key' -X POST --data-binary @"$T/keys/secret.key" \
  "$URL/v1/models/digits/predict?key_id=$KEY"
status 400 'ciphertexts truncated' -X POST --data-binary @<(head -c 4000 "$T/keys/eval.keys") \
  "$URL/v1/models/digits/predict?key_id=$KEY"
status 400 'not ciphertexts: no veil header' -X POST --data-binary @"$T/keys/model_id" \
  "$URL/v1/models/digits/predict?key_id=$KEY"
status 413 'over the limit' -X POST --data-binary @<(head -c 70000 /dev/zero) "$URL/v1/models/digits/predict?key_id=$KEY"
status 400 'expected evaluation keys, got a secret key' -X POST --data-binary @"$T/keys/secret.key" \
  "$URL/v1/keys?model=digits"
status 400 'truncated' -X POST --data-binary @<(head -c 100000 "$T/keys/eval.keys") "$URL/v1/keys?model=digits"
status 400 'made for other parameters' -X POST --data-binary @<(head -c 100000 "$T/keys/eval.keys") \
  "$URL/v1/keys?model=other"
status 400 'needs ?model=NAME' -X POST --data-binary @"$T/keys/model_id" "$URL/v1/keys"
status 405 'not allowed' -X PUT "$URL/v1/models"
status 403 'simulate is off' -X POST -d '{"inputs": [1]}' "$URL/v1/models/digits/simulate"
status 200 '"status":"ok"' "$URL/healthz"
status 200 'veil_keys_held 2' "$URL/metrics" # digits and two (lr has none)
check "no upload left behind" test -z "$(ls -A "$T/data/keys" | grep upload)"

# a restart keeps the keys: the client predicts without uploading
PORT=$(cat "$T/port")
stop
start "$PORT" --allow-simulate
"$B/veil" client --url "$URL" --model digits --keys "$T/keys" --input "$M/test.npy" --limit $N -o "$T/y2.npy" \
  >"$T/client2.out" 2>"$T/client2.err"
check "client after restart: $(tail -3 "$T/client2.err")" grep -q "samples=$N ok=$N" "$T/client2.out"
check "no second upload" test "$(grep -c 'evaluation keys uploaded' "$T/client2.err")" = 0
"$B/npy_argmax" "$T/y2.npy" >"$T/pred2"
check "same predictions after restart" cmp -s "$T/pred2" <(head -$N "$T/pred_sim")
status 400 'bad JSON' -X POST -d '{"inputs": [1,' "$URL/v1/models/digits/simulate"
status 400 'quantized integers' -X POST -d '{"inputs": [1]}' "$URL/v1/models/digits/simulate"
status 200 '"outputs":\[' -X POST -d "{\"inputs\": [$(seq -s, 0 63)]}" "$URL/v1/models/digits/simulate"

# a full worker pool answers 503 at once, with the live counts: a key upload holds the only slot,
# its body held open half sent (a FIFO) until the refusal is seen
mkfifo "$T/fifo"
curl -s -o /dev/null -X POST -H 'Content-Type: application/octet-stream' -T "$T/fifo" "$URL/v1/keys?model=digits" &
UP=$!
exec 3>"$T/fifo"
head -c 1000000 "$T/keys/eval.keys" >&3
for _ in $(seq 400); do curl -s "$URL/metrics" | grep -q '^veil_in_flight 1' && break; sleep 0.05; done
status 503 'busy: 1 requests in progress and 0 waiting' -X POST --data-binary @"$T/keys/model_id" \
  "$URL/v1/models/digits/predict?key_id=$KEY"
tail -c +1000001 "$T/keys/eval.keys" >&3
exec 3>&-
wait $UP
status 200 'veil_busy_total 1' "$URL/metrics"

# a deleted key: the client notices and uploads again
status 200 '"deleted"' -X DELETE "$URL/v1/keys/$KEY"
status 404 'unknown key id' "$URL/v1/keys/$KEY"
"$B/veil" client --url "$URL" --model digits --keys "$T/keys" --input "$M/test.npy" --limit 1 >"$T/client3.out" \
  2>"$T/client3.err"
check "client after deletion: $(tail -3 "$T/client3.err")" grep -q "samples=1 ok=1" "$T/client3.out"
check "uploaded again" grep -q "evaluation keys uploaded" "$T/client3.err"
stop

# the quota, and the idle expiry (checked at start-up too)
start 0 --quota 1000
status 507 'quota' -X POST --data-binary @"$T/keys/secret.key" "$URL/v1/keys?model=digits"
stop
touch -d '-1 hour' "$T"/data/keys/*.keys # idle for an hour, by the clock that survives restarts
start 0 --key-expiry 60
status 200 'veil_keys_held 0' "$URL/metrics"
check "expiry logged" grep -q "expired" "$T/serve.log"
stop

# HTTPS: the same through TLS, trusting a self-signed certificate
if command -v openssl >/dev/null; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
  start 0 --tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
  URL=https://127.0.0.1:$(cat "$T/port")
  status 200 '"status":"ok"' --cacert "$T/cert.pem" "$URL/healthz"
  checks=$((checks + 1))
  if curl -s -o /dev/null "$URL/healthz"; then echo "FAILED: an untrusted certificate was accepted" >&2; fails=$((fails + 1)); fi
  "$B/veil" client --url "$URL" --model digits --keys "$T/keys" --cacert "$T/cert.pem" --input "$M/test.npy" \
    --limit 1 >"$T/client4.out" 2>"$T/client4.err"
  check "client over HTTPS: $(tail -3 "$T/client4.err")" grep -q "samples=1 ok=1" "$T/client4.out"
  stop
fi
check "server log names each model's load" grep -q "model digits loaded in" "$T/serve.log"
echo "test_serve: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
