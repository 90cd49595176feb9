#!/bin/bash
# onprem-ce: links, loopbacks, tunnel links and static routes. Rendered by the lab.
set -euo pipefail

# Links are found by the transport address Docker gave them, named after
# their network, and given their scenario address instead: Docker's own
# address (and its default route via the host) goes.
lab-name-link 172.28.0.26 onprem-lan
ip addr flush dev onprem-lan
ip addr add 192.168.10.1/24 dev onprem-lan
lab-name-link 172.28.0.34 er-primary
ip addr flush dev er-primary
ip addr add 172.16.0.1/30 dev er-primary
lab-name-link 172.28.0.42 er-secondary
ip addr flush dev er-secondary
ip addr add 172.16.0.5/30 dev er-secondary

# Announce each address at once (unsolicited ARP), as a host does on link up:
# the bridge learns this node's new port. A restarted container keeps its MAC,
# and the kernel tears the old namespace down slowly; until this node spoke,
# frames for it went to the old port, which answered "port unreachable".
# In the background: arping lingers a second after sending.
arping -q -U -c 1 -I onprem-lan 192.168.10.1 </dev/null >/dev/null 2>&1 &
arping -q -U -c 1 -I er-primary 172.16.0.1 </dev/null >/dev/null 2>&1 &
arping -q -U -c 1 -I er-secondary 172.16.0.5 </dev/null >/dev/null 2>&1 &

# Nothing the lab sends may leave the machine: no default route at all.
while ip route del default 2>/dev/null; do :; done
