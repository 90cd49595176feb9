#!/bin/bash
# strongSwan's updown hook, rendered by the lab. A new CHILD_SA means the
# tunnel was (re)built, possibly to another gateway instance: the BGP session
# that rides on it is restarted at once, as a route-based device does when
# its tunnel interface flaps, instead of waiting out the hold timer.
# Only a session still Established is reset: it ran over the old SA and is
# stale. One already down (BFD, or never up on a new active instance) is left
# to FRR's connect retries: a reset would add FRR's 1 s start timer.
# Its own log: the hook runs with charon's capabilities only (NET_ADMIN, under no-new-privileges),
# which can't write to PID 1's output.
log=/var/log/lab-updown.log
case "$PLUTO_CONNECTION" in
  onprem-0) peer=10.10.255.1 ;;
  *) exit 0 ;;
esac
case "$PLUTO_VERB" in
  up-client)
    vtysh -c "show bgp neighbors $peer json" 2>/dev/null | grep -q '"bgpState":"Established"' || exit 0
    echo "lab-updown: $PLUTO_CONNECTION up, restarting BGP with $peer" >> "$log"
    vtysh -c "clear bgp ipv4 unicast $peer" >/dev/null 2>&1 || true
    ;;
  down-client)
    # The tunnel's CHILD_SA is gone (dead peer, DELETE). A route-based device
    # drops the BGP session over a tunnel whose interface went down, so the
    # routes over it are withdrawn now, not when the hold timer (180 s) runs
    # out; the session can't come back until a new SA carries it. Unless a new
    # CHILD_SA already carries the tunnel (a rekey, a takeover): checked after a
    # moment, detached (charon holds the IKE_SA while this hook runs).
    (sleep 0.5
     swanctl --list-sas --ike "$PLUTO_CONNECTION" 2>/dev/null | grep -q INSTALLED && exit 0
     vtysh -c "show bgp neighbors $peer json" 2>/dev/null | grep -q '"bgpState":"Established"' || exit 0
     echo "lab-updown: $PLUTO_CONNECTION down, dropping BGP with $peer" >> "$log"
     vtysh -c "clear bgp ipv4 unicast $peer") </dev/null >/dev/null 2>&1 &
    ;;
esac
exit 0
