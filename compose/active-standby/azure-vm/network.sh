#!/bin/bash
# azure-vm: links, loopbacks, tunnel links and static routes. Rendered by the lab.
set -euo pipefail

# Docker's ethN order is not guaranteed: find each link by its address and
# name it after its network.
name_link() {
  local address=$1 name=$2 dev
  dev=$(ip -o -4 addr show | awk -v a="$address" '{split($4, p, "/"); if (p[1] == a) print $2}')
  [ -n "$dev" ] || { echo "no interface holds $address" >&2; exit 1; }
  if [ "$dev" != "$name" ]; then
    ip link set dev "$dev" down
    ip link set dev "$dev" name "$name"
    ip link set dev "$name" up
  fi
}
name_link 10.1.1.4 vnet-workload

# Nothing the lab sends may leave the machine: no default route at all.
while ip route del default 2>/dev/null; do :; done
ip route replace 10.1.0.0/16 via 10.1.1.1
ip route replace 192.168.10.0/24 via 10.1.1.1
