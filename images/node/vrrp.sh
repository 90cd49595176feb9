#!/bin/bash
# lab-vrrp start|stop: keepalived on a node sharing addresses (a gateway instance, a LAN router), for hand-overs.
# `stop` is graceful: keepalived leaves with a priority-0 advert, so the
# standby takes the public IP at once instead of waiting out the adverts.
set -u
CONF=/lab/keepalived/keepalived.conf
running() { pgrep -x keepalived >/dev/null; }
case "${1:-}" in
  start)
    [ -f "$CONF" ] || { echo "lab-vrrp: this node runs no VRRP"; exit 2; }
    running && exit 0
    setsid keepalived --dont-fork --log-console --use-file "$CONF" >>/var/log/keepalived.log 2>&1 </dev/null &
    for _ in $(seq 1 50); do running && exit 0; sleep 0.1; done
    echo "lab-vrrp: keepalived did not start"; exit 1 ;;
  stop)
    running || exit 0
    pkill -TERM -x keepalived
    for _ in $(seq 1 50); do running || exit 0; sleep 0.1; done
    echo "lab-vrrp: keepalived did not stop"; exit 1 ;;
  *) echo "usage: lab-vrrp start|stop"; exit 2 ;;
esac
