#!/bin/bash
# er-gw-1: links, loopbacks, tunnel links and static routes. Rendered by the lab.
set -euo pipefail

# Links are found by the transport address Docker gave them, named after
# their network, and given their scenario address instead: Docker's own
# address (and its default route via the host) goes.
lab-name-link 172.28.0.53 er-backbone
ip addr flush dev er-backbone
ip addr add 10.254.0.5/29 dev er-backbone
lab-name-link 172.28.0.11 gateway-subnet
ip addr flush dev gateway-subnet
ip addr add 10.1.255.13/27 dev gateway-subnet

# Announce each address at once (unsolicited ARP), as a host does on link up:
# the bridge learns this node's new port. A restarted container keeps its MAC,
# and the kernel tears the old namespace down slowly; until this node spoke,
# frames for it went to the old port, which answered "port unreachable".
# In the background: arping lingers a second after sending.
arping -q -U -c 1 -I er-backbone 10.254.0.5 </dev/null >/dev/null 2>&1 &
arping -q -U -c 1 -I gateway-subnet 10.1.255.13 </dev/null >/dev/null 2>&1 &

# Nothing the lab sends may leave the machine: no default route at all.
while ip route del default 2>/dev/null; do :; done
