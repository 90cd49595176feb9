#!/bin/bash
# azure-vm: links, loopbacks, tunnel links and static routes. Rendered by the lab.
set -euo pipefail

# Links are named after their network (lab-name-link is in the image).
lab-name-link 10.1.1.4 vnet-workload

# Nothing the lab sends may leave the machine: no default route at all.
while ip route del default 2>/dev/null; do :; done
ip route replace 10.1.0.0/16 via 10.1.1.1
ip route replace 192.168.10.0/24 via 10.1.1.1
