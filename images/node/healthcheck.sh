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
VRRP=/lab/keepalived/keepalived.conf
if [ -f "$VRRP" ]; then
  pid=$(pgrep -xo keepalived) || missing "keepalived is not running"
  # Its role is decided once it has listened for a master-down interval (3 adverts and a skew of
  # less than one, RFC 5798): a backup that hears no master has become one by then. Before, a
  # restarted router and its peer may both be backups, and who will hold the addresses is unknown.
  advert=$(sed -n 's/^ *advert_int *\([0-9.]*\).*/\1/p' "$VRRP" | sort -g | tail -1)
  awk -v advert="${advert:-1}" -v tick="$(getconf CLK_TCK)" \
      'FNR == NR { up = $1; next } { started = $22 / tick } END { exit !(up - started >= 4 * advert) }' \
      /proc/uptime "/proc/$pid/stat" || missing "keepalived is still listening for a VRRP master"
fi
exit 0
