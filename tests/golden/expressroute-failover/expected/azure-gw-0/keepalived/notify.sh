#!/bin/bash
# Runs on every VRRP transition of this vpn-gw instance. The active
# instance brings its tunnels up (INITIAL_CONTACT tells the peer to drop
# the old SAs). An instance that leaves has already lost the public IP, so
# it can't send a DELETE: it drops its SAs locally at once (--force with no
# timeout: no wait for an answer that can't come), and
# resets the BGP sessions that ran over them, as a router does when its
# tunnel interface goes down: left alone, a stale session would keep
# advertising routes to the VNet until its hold timer ran out.
state=$1
echo "lab-notify: vrrp $state" > /proc/1/fd/1
case "$state" in
  master)
    swanctl --initiate --ike onprem-0 --child onprem-0 --timeout 30 >/dev/null 2>&1 &
    ;;
  backup|fault|stop)
    swanctl --terminate --ike onprem-0 --force >/dev/null 2>&1 &
    vtysh -c 'clear bgp ipv4 unicast '10.10.255.1 >/dev/null 2>&1 &
    ;;
esac
exit 0
