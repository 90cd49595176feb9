#!/bin/bash
# azure-gw-1: links, loopbacks, tunnel links and static routes. Rendered by the lab.
set -euo pipefail

# Links are found by the transport address Docker gave them, named after
# their network, and given their scenario address instead: Docker's own
# address (and its default route via the host) goes.
lab-name-link 172.28.0.4 internet
ip addr flush dev internet
ip addr add 198.51.100.11/24 dev internet
lab-name-link 172.28.0.13 gateway-subnet
ip addr flush dev gateway-subnet
ip addr add 10.1.255.5/27 dev gateway-subnet

# Announce each address at once (unsolicited ARP), as a host does on link up:
# the bridge learns this node's new port. A restarted container keeps its MAC,
# and the kernel tears the old namespace down slowly; until this node spoke,
# frames for it went to the old port, which answered "port unreachable".
# In the background: arping lingers a second after sending.
arping -q -U -c 1 -I internet 198.51.100.11 </dev/null >/dev/null 2>&1 &
arping -q -U -c 1 -I gateway-subnet 10.1.255.5 </dev/null >/dev/null 2>&1 &

# Nothing the lab sends may leave the machine: no default route at all.
while ip route del default 2>/dev/null; do :; done
ip addr replace 100.64.0.1/32 dev lo

# Tunnel onprem-0: VXLAN between the CHILD_SA's /32 selectors. Its MAC
# follows the link address: every instance that may serve the tunnel presents the same one.
ip link del vti0 2>/dev/null || true
ip link add vti0 address 02:00:64:40:00:05 type vxlan id 100 local 100.64.0.1 remote 100.64.0.2 dstport 4789
ip link set vti0 mtu 1300 up
ip addr add 100.64.0.5/30 dev vti0
# A route-based tunnel is point to point: no neighbour discovery on it, so a
# dead far end is found by DPD, BGP or BFD, as on a VTI, and not by ARP
# failing (the kernel would then skip that ECMP next hop after ~5 s).
ip neigh replace 100.64.0.6 lladdr 02:00:64:40:00:06 dev vti0 nud permanent
# Inner traffic goes into the SA or nowhere: the SA's route (table 220) wins
# while it is installed; without it this drops instead of routing it anywhere.
ip route replace blackhole 100.64.0.2/32
