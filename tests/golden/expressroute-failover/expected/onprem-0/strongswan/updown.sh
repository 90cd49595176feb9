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
  onprem-0) peer=10.1.255.30 ;;
  *) exit 0 ;;
esac
case "$PLUTO_VERB" in
  up-client)
    # Both ends may initiate at once (the device at start, the instance that
    # becomes active). The IKE_SA established last is kept, as strongSwan's
    # uniqueness policy keeps it on the gateway, and the other ESTABLISHED ones
    # are deleted (a DELETE is sent, not waited for: an SA of a dead instance
    # gets no answer, and meanwhile its CHILD_SA would carry our traffic into
    # nowhere). "Last" is the order in which this hook saw them come up. Done
    # at once, and again 2 s later for one that came up in between; the same
    # rule in every hook, so they never undo each other. An SA still
    # connecting is never touched. Detached: charon holds the IKE_SA (and
    # reads our output) until this hook returns, so listing SAs here would
    # wait forever.
    echo "$PLUTO_UNIQUEID" >> /run/lab-updown-order
    (keep_newest() {
       established=$(swanctl --list-sas --ike "$PLUTO_CONNECTION" 2>/dev/null \
                       | sed -n "s/^$PLUTO_CONNECTION: #\([0-9]*\), ESTABLISHED,.*/\1/p")
       newest=""
       for id in $(tac /run/lab-updown-order); do
         if echo "$established" | grep -qx "$id"; then newest=$id; break; fi
       done
       [ -n "$newest" ] || return 0
       for id in $established; do
         [ "$id" = "$newest" ] && continue
         echo "lab-updown: $PLUTO_CONNECTION: deleting duplicate IKE_SA #$id" >> "$log"
         swanctl --terminate --ike-id "$id" --force >/dev/null 2>&1
       done
     }
     keep_newest
     sleep 2
     keep_newest) </dev/null >/dev/null 2>&1 &
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
