#!/bin/bash
# Healthy when every daemon the node was given a config for is running and answers.
set -eu
[ -f /run/lab-ready ] || exit 1
if [ -f /lab/strongswan/strongswan.conf ]; then
  swanctl --stats >/dev/null 2>&1 || exit 1
fi
if [ -f /lab/frr/frr.conf ]; then
  for daemon in $(sed -n 's/^\([a-z]*d\)=yes$/\1/p' /etc/frr/daemons); do
    pgrep -x "$daemon" >/dev/null || exit 1
  done
  # Bounded: a hung daemon would leave one vtysh behind per check, against the node's pids limit.
  timeout 2 vtysh -c 'show daemons' >/dev/null 2>&1 || exit 1
fi
if [ -f /lab/keepalived/keepalived.conf ]; then
  pgrep -x keepalived >/dev/null || exit 1
fi
exit 0
