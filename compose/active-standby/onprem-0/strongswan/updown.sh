#!/bin/bash
# strongSwan's updown hook, rendered by the lab. A new CHILD_SA means the
# tunnel was (re)built, possibly to another gateway instance: the BGP session
# that rides on it is restarted at once, as a route-based device does when
# its tunnel interface flaps, instead of waiting out the hold timer.
# Only a session still Established is reset: it ran over the old SA and is
# stale. One already down (BFD, or never up on a new active instance) is left
# to FRR's connect retries: a reset would add FRR's 1 s start timer.
case "$PLUTO_VERB" in
  up-client)
    case "$PLUTO_CONNECTION" in
      onprem-0) peer=10.1.255.30 ;;
      *) exit 0 ;;
    esac
    # Both ends may initiate at once (the device at start, the instance that
    # becomes active). Of the ESTABLISHED IKE_SAs the newest (highest id) is
    # kept: its hook, and only its, deletes the others (a DELETE is sent, but
    # not waited for: an SA of a dead instance gets no answer, and while it
    # waited its CHILD_SA would still carry our traffic into nowhere). One
    # still connecting is never touched: the gateway may have completed it
    # already (and replaced its twin), and killing it would leave both ends
    # with nothing. Detached: charon
    # holds the IKE_SA (and reads our output) until this hook returns, so
    # listing SAs here would wait forever.
    (ids=$(swanctl --list-sas --ike "$PLUTO_CONNECTION" 2>/dev/null \
             | sed -n "s/^$PLUTO_CONNECTION: #\([0-9]*\), ESTABLISHED,.*/\1/p" | sort -n)
     [ "$(echo "$ids" | tail -n 1)" = "$PLUTO_UNIQUEID" ] || exit 0
     for id in $ids; do
       [ "$id" = "$PLUTO_UNIQUEID" ] && continue
       echo "lab-updown: $PLUTO_CONNECTION: deleting duplicate IKE_SA #$id" > /proc/1/fd/1
       swanctl --terminate --ike-id "$id" --force >/dev/null 2>&1
     done) </dev/null >/dev/null 2>&1 &
    vtysh -c "show bgp neighbors $peer json" 2>/dev/null | grep -q '"bgpState":"Established"' || exit 0
    echo "lab-updown: $PLUTO_CONNECTION up, restarting BGP with $peer" > /proc/1/fd/1
    vtysh -c "clear bgp ipv4 unicast $peer" >/dev/null 2>&1 || true
    ;;
esac
exit 0
