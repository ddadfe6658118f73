#!/usr/bin/env bash
# Two "machines" on one: network namespaces A (10.213.N.1, and 10.213.N.3 for the load balancer)
# and B (10.213.N.2), joined by a veth pair, each with its own host name (UTS namespace). Needs
# root (ip netns); `make test-distributed`, and in `make test`.
#  - MPI across both: mpirun in A starts rank 1 in B through an rsh agent that enters B
#    (tests/dist/netns-rsh.sh), over TCP on the namespace addresses only; on the QAT digits model
#    (exact rounding) veil predict --mode execute gives the clear outputs value for value, rank 1
#    on host B doing lookups with the keys rank 0 made and sent it over the veth, and veil run the
#    single process's ciphertexts byte for byte (rank 1 reading the key file, which both hosts see);
#  - two veil serve --shared-store, one per machine on its own address, behind nginx on the third
#    address with deploy/veil.conf (addresses substituted): keys uploaded once through the
#    balancer serve predictions through both servers (each logs some), every answer right;
#    a key deleted through one server is gone for the other; the balancer is not reachable from
#    outside the namespaces, and the servers listen on their namespace addresses only.
# Usage: test_hosts.sh BUILD_DIR SOURCE_DIR
set -u
B=$1
SRC=$2
V=$B/veil
if [ "$(id -u)" -ne 0 ]; then echo "test_hosts: SKIPPED: needs root (network namespaces)" >&2; exit 77; fi
for c in ip unshare mpirun nginx curl; do
  command -v $c >/dev/null || { echo "test_hosts: $c is missing (scripts/install-deps)" >&2; exit 1; }
done
# A free pair of namespace names, taken atomically (`ip netns add` fails on a name that exists: a
# concurrent run's, or one left by a run killed before its clean-up); only these are ours to delete.
NA= NB=
for i in $(seq 0 199); do
  N=$(( ($$ + i) % 200 + 20 ))
  ip netns add "veilA$N" 2>/dev/null || continue
  if ip netns add "veilB$N" 2>/dev/null; then NA=veilA$N NB=veilB$N; break; fi
  ip netns del "veilA$N"
done
[ -n "$NA" ] || { echo "test_hosts: no free namespace names veilA20..veilA219 (ip netns list)" >&2; exit 1; }
P=10.213.$N
T=$(mktemp -d /tmp/veil_hosts_XXXXXX)
chmod 755 "$T"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 VEIL_THREADS=1
export VEIL_NETNS_HOSTS="$P.1=$NA:hostA $P.2=$NB:hostB"
cleanup() {
  [ -f "$T/nginx.pid" ] && kill "$(cat "$T/nginx.pid")" 2>/dev/null
  for p in $(ip netns pids "$NA" 2>/dev/null) $(ip netns pids "$NB" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  sleep 0.2
  ip netns del "$NA" 2>/dev/null
  ip netns del "$NB" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
fails=0
checks=0
check() {
  local what=$1; shift
  checks=$((checks + 1))
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what" >&2; fails=$((fails + 1)); fi
}
waitfor() {
  local lim=$1; shift
  local end=$((SECONDS + lim))
  until "$@"; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.05
  done
}
INA=(ip netns exec "$NA" unshare --uts sh -c 'hostname hostA && exec "$0" "$@"')
INB=(ip netns exec "$NB" unshare --uts sh -c 'hostname hostB && exec "$0" "$@"')
inA() { "${INA[@]}" "$@"; }
inB() { "${INB[@]}" "$@"; }

ip link del "vA$N" 2>/dev/null  # a veth of this name that a killed run left in the host namespace
ip link add "vA$N" type veth peer name "vB$N" &&
  ip link set "vA$N" netns "$NA" && ip link set "vB$N" netns "$NB" &&
  ip -n "$NA" addr add "$P.1/24" dev "vA$N" && ip -n "$NA" addr add "$P.3/24" dev "vA$N" &&
  ip -n "$NB" addr add "$P.2/24" dev "vB$N" &&
  ip -n "$NA" link set "vA$N" up && ip -n "$NB" link set "vB$N" up &&
  ip -n "$NA" link set lo up && ip -n "$NB" link set lo up ||
  { echo "test_hosts: cannot make the namespaces" >&2; exit 1; }
echo "hosts: A $P.1 (balancer $P.3), B $P.2"

# ---- one inference over both machines --------------------------------------------------------
D=$SRC/models/digits_qat
"$V" compile "$D/model.onnx" --inputset "$D/train.npy" --qat --n-bits-json '{"model_inputs": 4, "model_outputs": 4}' \
  --rounding-bits 6 --rounding-method exact -o "$T/qx" >/dev/null
"$V" keygen "$T/qx" --keys "$T/k" >/dev/null
"$V" encrypt "$T/qx" --keys "$T/k" --input "$D/test.npy" --sample 1 -o "$T/ct.veil" >/dev/null
"$V" run "$T/qx" --eval-keys "$T/k/eval.keys" --input "$T/ct.veil" -o "$T/one.veil" >/dev/null
MPI=(mpirun --host "$P.1:1,$P.2:1" -np 2 --mca plm_rsh_agent "$SRC/tests/dist/netns-rsh.sh"
     --mca oob_tcp_if_include "$P.0/24" --mca btl_tcp_if_include "$P.0/24" --mca btl self,tcp)
# rank 1 must get the keys from rank 0, over the link: B is told no file name (veil predict makes
# the keys on rank 0)
timeout 600 "${INA[@]}" "${MPI[@]}" "$V" predict "$T/qx" --input "$D/test.npy" --mode execute --limit 2 -o "$T/p2.npy" \
  >"$T/p2.txt" 2>"$T/p2.err"
check "predict over two hosts succeeds" [ $? -eq 0 ]
"$V" predict "$T/qx" --input "$D/test.npy" --mode clear --limit 2 -o "$T/p1.npy" >/dev/null
check "its outputs are the clear ones, value for value (exact rounding)" cmp -s "$T/p1.npy" "$T/p2.npy"
check "rank 0 on host A, rank 1 on host B" grep -q "hosts: 0@hostA 1@hostB" "$T/p2.err"
check "rank 1 did lookups" grep -Eq "rank 1: lookups=[1-9]" "$T/p2.err"
check "the keys went to host B over the link" grep -Eq "key_bytes=[1-9]" "$T/p2.err"
timeout 600 "${INA[@]}" "${MPI[@]}" "$V" run "$T/qx" --eval-keys "$T/k/eval.keys" --input "$T/ct.veil" -o "$T/two.veil" \
  >"$T/run.txt" 2>"$T/run.err"
check "veil run over two hosts: the single process's ciphertexts, byte for byte" cmp -s "$T/one.veil" "$T/two.veil"
grep "MPI:" "$T/p2.err" "$T/run.err" | sed 's/^/  /'

# ---- two servers behind nginx, one shared key store ------------------------------------------
mkdir -p "$T/store"
serveOn() { # serveOn inA|inB ADDR NAME
  $1 "$V" serve "$T/qx" --host "$2" --port 0 --port-file "$T/port_$3" --data "$T/store" --shared-store --workers 1 \
    >"$T/serve_$3.log" 2>&1 &
}
serveOn inA "$P.1" a
serveOn inB "$P.2" b
waitfor 60 test -s "$T/port_a" && waitfor 60 test -s "$T/port_b" || { echo "FAILED: the servers did not start" >&2; exit 1; }
PA=$(cat "$T/port_a") PB=$(cat "$T/port_b")
sed -e "s/10\.0\.0\.11:8080/$P.1:$PA/" -e "s/10\.0\.0\.12:8080/$P.2:$PB/" -e "s/10\.0\.0\.10:80/$P.3:8080/" \
  "$SRC/deploy/veil.conf" >"$T/veil.conf"
mkdir -p "$T/nginx"
cat >"$T/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $T/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 256; }
http {
    access_log $T/nginx/access.log combined;
    log_format up '\$request \$status upstream=\$upstream_addr';
    access_log $T/nginx/upstream.log up;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    include $T/veil.conf;
}
EOF
inA nginx -c "$T/nginx.conf" -p "$T/nginx" || { echo "FAILED: nginx did not start" >&2; cat "$T/nginx/error.log" >&2; exit 1; }
LB=http://$P.3:8080
waitfor 30 inA curl -sf --max-time 2 "$LB/healthz" -o /dev/null
check "the balancer answers inside the namespaces" inA curl -sf --max-time 5 "$LB/healthz" -o /dev/null
check "and not from outside them" bash -c "! curl -sf --max-time 2 '$LB/healthz' -o /dev/null"
check "server B listens on its namespace address only" bash -c "! ip netns exec $NB curl -sf --max-time 2 http://127.0.0.1:$PB/healthz -o /dev/null"
"$V" predict "$T/qx" --input "$D/test.npy" --mode clear --limit 6 -o "$T/clear6.npy" >/dev/null
inB "$V" client --url "$LB" --model qx --keys "$T/ck" --input "$D/test.npy" --limit 6 -o "$T/c6.npy" >"$T/c6.txt" 2>&1
check "six predictions through the balancer, keys uploaded once: the clear outputs value for value" \
  cmp -s "$T/c6.npy" "$T/clear6.npy"
check "the keys were uploaded once" [ "$(grep -c 'POST /v1/keys' "$T/nginx/upstream.log")" -eq 1 ]
na=$(grep -c "predict 200" "$T/serve_a.log") nb=$(grep -c "predict 200" "$T/serve_b.log")
check "both servers served predictions ($na on A, $nb on B) with the one upload" [ "$na" -ge 1 ] && [ "$nb" -ge 1 ]
check "nginx sent requests to both addresses" bash -c "grep -q 'upstream=$P.1:$PA' '$T/nginx/upstream.log' && grep -q 'upstream=$P.2:$PB' '$T/nginx/upstream.log'"
kid=$(ls "$T/store/keys" | sed -n 's/\.meta$//p' | head -1)
check "one key set in the shared store" [ "$(ls "$T/store/keys" | grep -c '\.meta$')" -eq 1 ]
check "server B knows the key" inB curl -sf --max-time 5 "http://$P.2:$PB/v1/keys/$kid" -o /dev/null
inA curl -sf --max-time 5 -X DELETE "http://$P.1:$PA/v1/keys/$kid" -o /dev/null
check "deleted through server A: gone for server B too" \
  bash -c "[ \"\$(ip netns exec $NB curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://$P.2:$PB/v1/keys/$kid)\" = 404 ]"
sed 's/^/  /' "$T/c6.txt" | tail -2

echo "test_hosts: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
