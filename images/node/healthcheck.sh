#!/bin/bash
# Ready when every daemon the node was given a config for is running and answers; else says which
# is not, in one line (`lab` runs this while it waits for the node and shows the last answer).
set -u
missing() { echo "$*"; exit 1; }
[ -f /run/lab-ready ] || missing "its entrypoint is still starting the daemons"
if [ -f /lab/strongswan/strongswan.conf ]; then
  swanctl --stats >/dev/null 2>&1 || missing "charon does not answer on VICI"
fi
if [ -f /lab/frr/frr.conf ]; then
  for daemon in $(sed -n 's/^\([a-z]*d\)=yes$/\1/p' /etc/frr/daemons); do
    pgrep -x "$daemon" >/dev/null || missing "FRR's $daemon is not running"
  done
  # Bounded: a hung daemon would leave one vtysh behind per check, against the node's pids limit.
  timeout 2 vtysh -c 'show daemons' >/dev/null 2>&1 || missing "FRR's daemons do not answer vtysh"
fi
if [ -f /lab/keepalived/keepalived.conf ]; then
  pgrep -x keepalived >/dev/null || missing "keepalived is not running"
fi
exit 0
