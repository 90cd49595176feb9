#!/bin/bash
# vnet-router: links, loopbacks, tunnel links and static routes. Rendered by the lab.
set -euo pipefail

# Links are named after their network (lab-name-link is in the image).
lab-name-link 10.1.255.10 gateway-subnet
lab-name-link 10.1.1.1 vnet-workload

# Nothing the lab sends may leave the machine: no default route at all.
while ip route del default 2>/dev/null; do :; done
