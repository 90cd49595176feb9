#!/bin/bash
# lab-vrrp-notify GROUP STATE: keepalived's notify for a group that moves only
# addresses (a LAN's first hop). The line goes to the node's log, where the
# failover timeline reads VRRP transitions.
echo "lab-notify: vrrp ${2:-?} group ${1:-?}" > /proc/1/fd/1
exit 0
