#!/bin/bash
# azure-vm: links, loopbacks, tunnel links and static routes. Rendered by the lab.
set -euo pipefail

# Links are found by the transport address Docker gave them, named after
# their network, and given their scenario address instead: Docker's own
# address (and its default route via the host) goes.
lab-name-link 172.28.0.19 vnet-workload
ip addr flush dev vnet-workload
ip addr add 10.1.1.4/24 dev vnet-workload

# Announce each address at once (unsolicited ARP), as a host does on link up:
# the bridge learns this node's new port. A restarted container keeps its MAC,
# and the kernel tears the old namespace down slowly; until this node spoke,
# frames for it went to the old port, which answered "port unreachable".
# In the background: arping lingers a second after sending.
arping -q -U -c 1 -I vnet-workload 10.1.1.4 </dev/null >/dev/null 2>&1 &

# Nothing the lab sends may leave the machine: no default route at all.
while ip route del default 2>/dev/null; do :; done
ip route replace 192.168.10.0/24 via 10.1.1.1
ip route replace 192.168.10.0/24 via 10.1.1.1
ip route replace 10.1.0.0/16 via 10.1.1.1
