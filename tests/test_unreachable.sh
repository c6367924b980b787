#!/usr/bin/env bash
# A peer whose host becomes unreachable: two "hosts" made of network
# namespaces joined by a veth pair (addresses in 10.231.N.0/24, used only
# between these two namespaces), Open MPI across them (over the tcp btl:
# osc/pt2pt on Open MPI 4, osc/rdma on Open MPI 5; an rsh agent that runs
# each node's daemon with `ip netns exec`, on Open MPI 5 also in a UTS
# namespace named after its host, see tests/transport/rsh-agent), rank 0
# on host A, rank 1 on host B.  Rank 1 reads a key rank 0 hosts with a 5 s
# timeout in a loop (tests/unreachable.c); 2 s after it has started, the
# link of host B is cut.  Checks: the read in flight returns ETIMEDOUT with a
# message naming rank 0, within its deadline plus a generous margin (< 20 s;
# without the deadline it never returned).  Then everything is killed (no
# waiting for Open MPI's own teardown) and the namespaces are removed, always.
#
# Usage: test_unreachable.sh UNREACHABLE_BINARY MPIRUN [cut|hosts]
# "hosts" stops after the 100 reads across the two hosts, without cutting
# the link (Open MPI 5, where such a read cannot be bounded: tests/CMakeLists.txt).
# Exit 77 (ctest SKIP_RETURN_CODE) with the reason where namespaces cannot
# be made (not root, no `ip`, no permission).
set -uo pipefail
bin=${1:?usage: test_unreachable.sh UNREACHABLE_BINARY MPIRUN}
mpirun=${2:?usage: test_unreachable.sh UNREACHABLE_BINARY MPIRUN}
mode=${3:-cut}
LIMIT_S=20 # an order of magnitude above what is expected (5-5.5 s): a hang test

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root for ip netns (running as uid $(id -u))"
command -v ip >/dev/null || skip "no ip command (Debian: iproute2)"

id=$$
nsa=mst-a-$id nsb=mst-b-$id
va=msva$id vb=msvb$id
net=10.231.$((id % 200 + 20))
tmp=$(mktemp -d /tmp/mpistore-unreachable.XXXXXX)
mpid=

cleanup() {
    [ -n "$mpid" ] && kill -9 "$mpid" 2>/dev/null
    for ns in "$nsa" "$nsb"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    done
    [ -n "$mpid" ] && wait "$mpid" 2>/dev/null
    ip netns del "$nsa" 2>/dev/null
    ip netns del "$nsb" 2>/dev/null
    ip link del "$va" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# hosts left by an earlier run of this script that was killed (ctest timeout)
for ns in $(ip netns list 2>/dev/null | awk '/^mst-[ab]-[0-9]+/ { print $1 }'); do
    if ! kill -0 "${ns##*-}" 2>/dev/null; then
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    fi
done
ip netns add "$nsa" 2>"$tmp/err" || skip "ip netns add is not permitted here: $(cat "$tmp/err")"
ip netns add "$nsb" || exit 1
ip link add "$va" type veth peer name "$vb" || skip "cannot create a veth pair"
ip link set "$va" netns "$nsa" && ip link set "$vb" netns "$nsb" &&
    ip -n "$nsa" addr add "$net.1/24" dev "$va" && ip -n "$nsb" addr add "$net.2/24" dev "$vb" &&
    ip -n "$nsa" link set "$va" up && ip -n "$nsb" link set "$vb" up &&
    ip -n "$nsa" link set lo up && ip -n "$nsb" link set lo up || { echo "FAIL: network set-up"; exit 1; }
echo "hosts: $nsa ($net.1) and $nsb ($net.2)"

# the rsh agent: like tests/transport/rsh-agent, but each node is a namespace
cat >"$tmp/agent" <<EOF
#!/bin/sh
while [ \$# -gt 0 ]; do
  case "\$1" in
    -*) shift ;;
    *) break ;;
  esac
done
host=\$1
shift
dir=$tmp/node-\$host
mkdir -p "\$dir"
OMPI_MCA_orte_tmpdir_base=\$dir
OMPI_MCA_btl_vader_backing_directory=\$dir
OMPI_MCA_btl_sm_backing_directory=\$dir
PRTE_MCA_prte_tmpdir_base=\$dir
export OMPI_MCA_orte_tmpdir_base OMPI_MCA_btl_vader_backing_directory
export OMPI_MCA_btl_sm_backing_directory PRTE_MCA_prte_tmpdir_base
case "\$*" in
  *prted*) exec ip netns exec "\$host" unshare --uts /bin/sh -c "hostname \$host && \$*" ;;
esac
exec ip netns exec "\$host" /bin/sh -c "\$*"
EOF
chmod +x "$tmp/agent"
printf '%s slots=1\n%s slots=1\n' "$nsa" "$nsb" >"$tmp/hostfile"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if "$mpirun" --version 2>/dev/null | grep -q "Open MPI) [5-9]"; then
    # Open MPI 5 (PRRTE): no osc/pt2pt; osc/rdma runs over the tcp btl
    launch=(--prtemca plm_ssh_agent "$tmp/agent" --prtemca plm_ssh_no_tree_spawn 1)
    osc=()
else
    launch=(--mca plm_rsh_agent "$tmp/agent" --mca plm_rsh_no_tree_spawn 1)
    osc=(--mca osc sm,pt2pt)
fi
ip netns exec "$nsa" "$mpirun" -n 2 --hostfile "$tmp/hostfile" "${launch[@]}" \
    --bind-to none --map-by node --mca mpi_yield_when_idle 1 \
    "${osc[@]}" --mca btl self,tcp \
    --mca btl_tcp_if_include "$net.0/24" --mca oob_tcp_if_include "$net.0/24" \
    "$bin" "$tmp/ready" "$tmp/result" >"$tmp/log" 2>&1 &
mpid=$!

wait_for() { # file seconds
    local end=$((SECONDS + $2))
    while [ ! -e "$1" ] && [ $SECONDS -lt $end ] && kill -0 "$mpid" 2>/dev/null; do
        sleep 0.1
    done
    [ -e "$1" ]
}
if ! wait_for "$tmp/ready" 120; then
    echo "FAIL: rank 1 never started reading; mpirun output:"
    cat "$tmp/log"
    exit 1
fi
if [ "$mode" = hosts ]; then
    cat "$tmp/log"
    echo "PASS: rank 1 on $nsb read rank 0's key on $nsa 100 times (link not cut: mode hosts)"
    exit 0
fi
sleep 2
t_cut=$(date +%s.%N)
ip -n "$nsb" link set "$vb" down
echo "link of $nsb cut"
if ! wait_for "$tmp/result" 60; then
    echo "FAIL: no read returned within 60 s of the cut; mpirun output:"
    cat "$tmp/log"
    exit 1
fi
t_res=$(date +%s.%N)
cat "$tmp/result"
rc=$(sed -n 's/^rc=\([A-Z_]*\) .*/\1/p' "$tmp/result")
elapsed=$(sed -n 's/^rc=[A-Z_]* elapsed=\([0-9.]*\) .*/\1/p' "$tmp/result")
msg=$(sed -n 's/^msg=//p' "$tmp/result")
since_cut=$(awk -v a="$t_res" -v b="$t_cut" 'BEGIN { printf "%.3f", a - b }')
echo "the read returned ${elapsed} s after it started, the result came ${since_cut} s after the cut"
status=0
[ "$rc" = MPISTORE_ETIMEDOUT ] || { echo "FAIL: expected MPISTORE_ETIMEDOUT, got '$rc'"; status=1; }
case "$msg" in
*"rank 0 did not answer"*) ;;
*) echo "FAIL: the message does not name rank 0: $msg"; status=1 ;;
esac
if [ -z "$elapsed" ] || awk -v e="$elapsed" -v c="$since_cut" -v l="$LIMIT_S" \
    'BEGIN { exit !(e >= l || c >= l + 5) }'; then
    echo "FAIL: the read took ${elapsed:-?} s (limit $LIMIT_S s, a hang test)"
    status=1
fi
[ $status -eq 0 ] && echo "PASS: ETIMEDOUT naming rank 0 after ${elapsed} s"
exit $status
