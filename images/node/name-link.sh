#!/bin/bash
# lab-name-link ADDRESS NAME: Docker's ethN order is not guaranteed, so each
# link is found by its address and named after its network.
set -euo pipefail
address=$1 name=$2
dev=$(ip -o -4 addr show | awk -v a="$address" '{split($4, p, "/"); if (p[1] == a) print $2}')
[ -n "$dev" ] || { echo "no interface holds $address" >&2; exit 1; }
if [ "$dev" != "$name" ]; then
  ip link set dev "$dev" down
  ip link set dev "$dev" name "$name"
  ip link set dev "$name" up
fi
