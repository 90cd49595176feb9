#!/bin/bash
# onprem-1: links, loopbacks, tunnel links and static routes. Rendered by the lab.
set -euo pipefail

# Links are found by the transport address Docker gave them, named after
# their network, and given their scenario address instead: Docker's own
# address (and its default route via the host) goes.
lab-name-link 172.28.0.5 internet
ip addr flush dev internet
ip addr add 198.51.100.21/24 dev internet
lab-name-link 172.28.0.27 onprem-lan
ip addr flush dev onprem-lan
ip addr add 192.168.10.3/24 dev onprem-lan

# Announce each address at once (unsolicited ARP), as a host does on link up:
# the bridge learns this node's new port. A restarted container keeps its MAC,
# and the kernel tears the old namespace down slowly; until this node spoke,
# frames for it went to the old port, which answered "port unreachable".
# In the background: arping lingers a second after sending.
arping -q -U -c 1 -I internet 198.51.100.21 </dev/null >/dev/null 2>&1 &
arping -q -U -c 1 -I onprem-lan 192.168.10.3 </dev/null >/dev/null 2>&1 &

# Nothing the lab sends may leave the machine: no default route at all.
while ip route del default 2>/dev/null; do :; done
ip addr replace 10.20.255.1/32 dev lo
ip addr replace 100.64.0.34/32 dev lo
ip addr replace 100.64.0.50/32 dev lo

# Tunnel onprem-1-0: VXLAN between the CHILD_SA's /32 selectors. Its MAC
# follows the link address: every instance that may serve the tunnel presents the same one.
ip link del vti2 2>/dev/null || true
ip link add vti2 address 02:00:64:40:00:26 type vxlan id 102 local 100.64.0.34 remote 100.64.0.33 dstport 4789
ip link set vti2 mtu 1300 up
ip addr add 100.64.0.38/30 dev vti2
# A route-based tunnel is point to point: no neighbour discovery on it, so a
# dead far end is found by DPD, BGP or BFD, as on a VTI, and not by ARP
# failing (the kernel would then skip that ECMP next hop after ~5 s).
ip neigh replace 100.64.0.37 lladdr 02:00:64:40:00:25 dev vti2 nud permanent
# Inner traffic goes into the SA or nowhere: the SA's route (table 220) wins
# while it is installed; without it this drops instead of routing it anywhere.
ip route replace blackhole 100.64.0.33/32

# Tunnel onprem-1-1: VXLAN between the CHILD_SA's /32 selectors. Its MAC
# follows the link address: every instance that may serve the tunnel presents the same one.
ip link del vti3 2>/dev/null || true
ip link add vti3 address 02:00:64:40:00:36 type vxlan id 103 local 100.64.0.50 remote 100.64.0.49 dstport 4789
ip link set vti3 mtu 1300 up
ip addr add 100.64.0.54/30 dev vti3
# A route-based tunnel is point to point: no neighbour discovery on it, so a
# dead far end is found by DPD, BGP or BFD, as on a VTI, and not by ARP
# failing (the kernel would then skip that ECMP next hop after ~5 s).
ip neigh replace 100.64.0.53 lladdr 02:00:64:40:00:35 dev vti3 nud permanent
# Inner traffic goes into the SA or nowhere: the SA's route (table 220) wins
# while it is installed; without it this drops instead of routing it anywhere.
ip route replace blackhole 100.64.0.49/32
