#!/bin/bash
# Runs on every VRRP transition of this azure-gw instance. The active
# instance brings its tunnels up (INITIAL_CONTACT tells the peer to drop
# the old SAs); an instance that steps down deletes them cleanly.
state=$1
echo "lab-notify: vrrp $state" > /proc/1/fd/1
case "$state" in
  master)
    swanctl --initiate --ike onprem-0 --child onprem-0 --timeout 30 >/dev/null 2>&1 &
    ;;
  backup|fault|stop)
    swanctl --terminate --ike onprem-0 --timeout 5 >/dev/null 2>&1 &
    ;;
esac
exit 0
