#!/bin/bash
# onprem-host: links, loopbacks, tunnel links and static routes. Rendered by the lab.
set -euo pipefail

# Links are found by the transport address Docker gave them, named after
# their network, and given their scenario address instead: Docker's own
# address (and its default route via the host) goes.
lab-name-link 172.28.0.28 onprem-lan
ip addr flush dev onprem-lan
ip addr add 192.168.10.10/24 dev onprem-lan

# Announce each address at once (unsolicited ARP), as a host does on link up:
# the bridge learns this node's new port. A restarted container keeps its MAC,
# and the kernel tears the old namespace down slowly; until this node spoke,
# frames for it went to the old port, which answered "port unreachable".
# In the background: arping lingers a second after sending.
arping -q -U -c 1 -I onprem-lan 192.168.10.10 </dev/null >/dev/null 2>&1 &

# Nothing the lab sends may leave the machine: no default route at all.
while ip route del default 2>/dev/null; do :; done
ip route replace 10.1.0.0/16 via 192.168.10.1
