#!/bin/sh
# An rsh agent for Open MPI (plm_rsh_agent) that "logs in" to a test host: a network namespace
# of tests/dist/test_hosts.sh, entered with its own host name (UTS namespace). Open MPI calls it
# as `netns-rsh.sh [OPTIONS] HOST COMMAND...`; VEIL_NETNS_HOSTS maps HOST to a namespace and a
# host name: "ADDR=NS:NAME ADDR=NS:NAME".
while [ $# -gt 0 ]; do
  case $1 in -*) shift ;; *) break ;; esac
done
host=$1
shift
for m in $VEIL_NETNS_HOSTS; do
  if [ "${m%%=*}" = "$host" ]; then
    v=${m#*=}
    exec ip netns exec "${v%%:*}" unshare --uts /bin/sh -c "hostname ${v#*:} && exec /bin/sh -c \"\$0\"" "$*"
  fi
done
echo "netns-rsh: unknown host $host" >&2
exit 255
