#!/bin/bash
# strongSwan's updown hook, rendered by the lab. A new CHILD_SA means the
# tunnel was (re)built, possibly to another gateway instance: the BGP session
# that rides on it is restarted at once, as a route-based device does when
# its tunnel interface flaps, instead of waiting out the hold timer.
case "$PLUTO_VERB" in
  up-client)
    case "$PLUTO_CONNECTION" in
      onprem-0) peer=10.10.255.1 ;;
      *) exit 0 ;;
    esac
    echo "lab-updown: $PLUTO_CONNECTION up, restarting BGP with $peer" > /proc/1/fd/1
    vtysh -c "clear bgp ipv4 unicast $peer" >/dev/null 2>&1 || true
    ;;
esac
exit 0
