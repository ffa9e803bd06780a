#!/usr/bin/env bash
# The MPI executor across two "machines": two network namespaces joined by a veth pair
# (10.199.19.1 and 10.199.19.2; nothing leaves the machine). mpirun runs in the first and
# starts the second's ranks through an rsh agent that enters the other namespace; ranks talk
# over TCP on the veth only (no shared memory). The output of a program on 2 ranks, one per
# namespace, must equal that of one process, byte for byte. Needs root (ip netns) and a flowc
# built with `--features mpi`: scripts/test-mpi-netns.sh target/debug/flowc [PROGRAM]
set -euo pipefail
flowc=$(realpath "${1:-target/debug/flowc}")
prog=$(realpath "${2:-examples/mlp.flow}")
[ "$(id -u)" = 0 ] || { echo "test-mpi-netns: needs root (ip netns)" >&2; exit 1; }
a=flowmpi-a-$$ b=flowmpi-b-$$
work=$(mktemp -d)
cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$a"
ip netns add "$b"
ip link add "veth-$$" netns "$a" type veth peer name "vpeer-$$" netns "$b"
ip -n "$a" addr add 10.199.19.1/24 dev "veth-$$"
ip -n "$b" addr add 10.199.19.2/24 dev "vpeer-$$"
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set "veth-$$" up
ip -n "$b" link set "vpeer-$$" up

# The "remote shell": mpirun calls it as `agent HOST COMMAND...`; it runs COMMAND in the
# namespace that owns HOST's address.
cat >"$work/agent" <<AGENT
#!/bin/sh
host=\$1; shift
echo "\$host" >>"$work/agent.log"
case "\$host" in
    10.199.19.1) ns=$a ;;
    10.199.19.2) ns=$b ;;
    *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" sh -c "\$*"
AGENT
chmod +x "$work/agent"
printf '10.199.19.1 slots=1\n10.199.19.2 slots=1\n' >"$work/hosts"

"$flowc" run --threads 1 "$prog" >"$work/one.out"
ip netns exec "$a" env OMPI_MCA_mpi_yield_when_idle=1 timeout 300 mpirun --allow-run-as-root \
    --timeout 240 -n 2 --hostfile "$work/hosts" \
    --mca plm_rsh_agent "$work/agent" --mca btl tcp,self \
    --mca btl_tcp_if_include 10.199.19.0/24 --mca oob_tcp_if_include 10.199.19.0/24 \
    -x OMPI_MCA_mpi_yield_when_idle -x PATH \
    "$flowc" run --threads 1 --stats "$prog" >"$work/two.out" 2>"$work/two.err" || {
    echo "FAIL  the job over two namespaces failed:" >&2
    cat "$work/two.err" >&2
    exit 1
}
if ! grep -qx 10.199.19.2 "$work/agent.log" 2>/dev/null; then
    echo "FAIL  mpirun never started a rank in the second namespace" >&2
    exit 1
fi
if cmp -s "$work/one.out" "$work/two.out"; then
    echo "ok    $(basename "$prog") on 2 ranks in 2 network namespaces over a veth pair = 1 process ($(sha256sum <"$work/two.out" | cut -c1-16)); $(grep '^mpi:' "$work/two.err")"
else
    echo "FAIL  $(basename "$prog") over two namespaces differs from one process" >&2
    diff "$work/one.out" "$work/two.out" | head >&2
    exit 1
fi
