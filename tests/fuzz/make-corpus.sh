#!/usr/bin/env bash
# Seeds for the fuzz targets, made by veil's own tools (veil compile, keygen, encrypt, run,
# predict) from the bundled models: small valid objects of every kind each reader takes, with the
# selector byte the target expects first. Rewrites tests/fuzz/corpus/; commit what it writes.
# Usage: make-corpus.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
B=$1
SRC=$2
S=$SRC/models
OUT=$SRC/tests/fuzz/corpus
W=$(mktemp -d /tmp/veil_corpus_XXXXXX)
trap 'rm -rf "$W"' EXIT
"$B/veil" compile "$S/logreg_breast_cancer/model.onnx" --inputset "$S/logreg_breast_cancer/train.npy" -o "$W/lr" >/dev/null
"$B/veil" compile "$S/breast_cancer_two/model.onnx" --inputset "$S/breast_cancer_two/train.npz" --rounding-bits 5 \
  --clear-input b -o "$W/two" >/dev/null
"$B/veil" keygen "$W/lr" --keys "$W/klr" >/dev/null
"$B/veil" keygen "$W/two" --keys "$W/k2" >/dev/null
"$B/veil" encrypt "$W/lr" --keys "$W/klr" --input "$S/logreg_breast_cancer/test.npy" -o "$W/lr.ct" >/dev/null
"$B/veil" run "$W/lr" --input "$W/lr.ct" -o "$W/lr.out" >/dev/null
"$B/veil" encrypt "$W/two" --keys "$W/k2" --input "$S/breast_cancer_two/test.npz" -o "$W/two.ct" >/dev/null
"$B/veil" predict "$W/lr" --input "$S/logreg_breast_cancer/test.npy" --limit 2 --mode clear -o "$W/y.npy" -o "$W/p.npy" >/dev/null
"$B/veil" predict "$W/lr" --input "$S/logreg_breast_cancer/test.npy" --limit 2 --mode clear -o "$W/y.npz" >/dev/null
rm -rf "$OUT"
mkdir -p "$OUT"/{container,npy,onnx,serve,json}
seed() { # seed TARGET NAME SELECTOR-BYTE FILE [BYTES]: the selector, then the file (its first BYTES)
  local f=$OUT/$1/$2
  printf "\\x$(printf %02x "$3")" >"$f"
  if [ -n "${5:-}" ]; then head -c "$5" "$4" >>"$f"; else cat "$4" >>"$f"; fi
}
seed container secret_key 0 "$W/k2/secret.key"
seed container eval_keys_head 1 "$W/k2/eval.keys" 8192 # whole ones are megabytes: their head
seed container request 2 "$W/two.ct"
seed container request_lr 2 "$W/lr.ct"
seed container answer 2 "$W/lr.out"
seed container client_bundle 4 "$W/lr/client.veil"
seed container server_bundle 5 "$W/lr/server.veil"
seed container model_client 6 "$W/two/client.veil"
# both bundles: the split point (4 bytes, little-endian), then client.veil and server.veil
cs=$(( $(stat -c %s "$W/lr/client.veil") + 4 ))
{ printf '\x07'; printf "\\x$(printf %02x $((cs & 255)))\\x$(printf %02x $((cs >> 8 & 255)))\\x$(printf %02x $((cs >> 16 & 255)))\\x00"
  cat "$W/lr/client.veil" "$W/lr/server.veil"; } >"$OUT/container/model_both"
seed npy output 0 "$W/y.npy"
seed npy outputs_npz 1 "$W/y.npz"
for m in linreg_diabetes logreg_breast_cancer breast_cancer_two dt_breast_cancer digits_cnn; do
  cp "$S/$m/model.onnx" "$OUT/onnx/$m.onnx"
done
req() { printf '%s\n' "$@"; }
req "GET /healthz" "" >"$OUT/serve/healthz"
req "GET /metrics" "" >"$OUT/serve/metrics"
req "GET /v1/models" "" >"$OUT/serve/models"
req "GET /v1/models/lr/client" "" >"$OUT/serve/client"
req "GET /v1/keys/0123456789abcdef0123456789abcdef" "" >"$OUT/serve/key_get"
req "DELETE /v1/keys/0123456789abcdef0123456789abcdef" "" >"$OUT/serve/key_delete"
{ req "POST /v1/models/lr/predict" "Content-Type: application/octet-stream" "Content-Length: $(stat -c %s "$W/lr.ct")" ""
  cat "$W/lr.ct"; } >"$OUT/serve/predict_lr"
{ req "POST /v1/models/two/predict?key_id=0123456789abcdef0123456789abcdef" ""; cat "$W/two.ct"; } >"$OUT/serve/predict_two"
{ req "POST /v1/keys?model=two" "Content-Length: 9000000" ""; head -c 8192 "$W/k2/eval.keys"; } >"$OUT/serve/upload"
ins=$(seq -s, 1 30)
{ req "POST /v1/models/lr/simulate" ""; printf '{"inputs": [%s]}' "$ins"; } >"$OUT/serve/simulate"
printf '\x00{"inputs": [%s]}' "$ins" >"$OUT/json/simulate_lr"
printf '\x02{"inputs": [1, -2, 3]}' >"$OUT/json/simulate_two"
printf '\x01{"error": "busy: 1 requests in progress and 0 waiting, try again"}' >"$OUT/json/error"
printf '\x01{"key_id": "0123456789abcdef0123456789abcdef", "model": "lr", "bytes": 1}' >"$OUT/json/key_id"
du -sh "$OUT"
