#!/bin/bash
# Starts a lab node from the configs mounted under /lab: the network
# plumbing first, then only the daemons the node's role has configs for.
set -euo pipefail

log() { echo "lab-entrypoint: $*"; }

# A restarted container (after a kill) keeps /run: stale sockets and pid
# files would make the daemons refuse to start or be mistaken for running.
rm -rf /run/lab-ready /run/charon.* /run/keepalived.pid /run/vrrp.pid /run/frr/* /run/lab-updown-order

# No name service: Docker's embedded resolver (127.0.0.11) forwards lookups
# to the host's resolvers, off the machine.
printf '# no name service: nothing in the lab resolves names off the machine\n' > /etc/resolv.conf
nft -f - <<'RULES'
table ip lab-isolation
delete table ip lab-isolation
table ip lab-isolation {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr 127.0.0.11 counter drop comment "Docker's embedded DNS"
  }
}
RULES

# Links and routes (rendered from the topology). It also drops Docker's
# default route: nothing the lab sends may leave the machine.
if [ -f /lab/network.sh ]; then
  log "plumbing network"
  bash /lab/network.sh
fi

if [ -f /lab/strongswan/strongswan.conf ]; then
  # Silent until its connections and keys are loaded: a peer's IKE_SA_INIT
  # answered by a charon with no config yet gets NO_PROPOSAL_CHOSEN, after
  # which the peer gives up for good; unanswered, it retransmits until we're ready.
  nft -f - <<'RULES'
table inet lab-ike-starting
delete table inet lab-ike-starting
table inet lab-ike-starting {
  chain input {
    type filter hook input priority -5; policy accept;
    udp dport { 500, 4500 } drop
  }
}
RULES
  log "starting charon"
  cp /lab/strongswan/strongswan.conf /etc/strongswan.conf
  mkdir -p /etc/swanctl/conf.d
  cp /lab/strongswan/swanctl.conf /etc/swanctl/swanctl.conf
  # Keys come from `lab up` (/lab/secrets) or from Compose's key service.
  for keys in /lab/secrets/psk.conf /lab-secrets/psk.conf; do
    if [ -f "$keys" ]; then install -m 0600 "$keys" /etc/swanctl/conf.d/psk.conf; fi
  done
  /usr/lib/ipsec/charon >/var/log/charon.log 2>&1 &
  for _ in $(seq 1 100); do [ -S /var/run/charon.vici ] && break; sleep 0.1; done
  [ -S /var/run/charon.vici ] || { log "charon did not open its VICI socket"; cat /var/log/charon.log; exit 1; }
  swanctl --load-all --noprompt >/var/log/swanctl-load.log 2>&1 || { cat /var/log/swanctl-load.log; exit 1; }
  nft delete table inet lab-ike-starting
fi

if [ -f /lab/frr/frr.conf ]; then
  log "starting FRR"
  install -o frr -g frr -m 0640 /lab/frr/frr.conf /etc/frr/frr.conf
  install -o frr -g frr -m 0640 /lab/frr/daemons /etc/frr/daemons
  printf 'service integrated-vtysh-config\n' > /etc/frr/vtysh.conf
  /usr/lib/frr/frrinit.sh start >/var/log/frr-start.log 2>&1 || { cat /var/log/frr-start.log; exit 1; }
fi

if [ -f /lab/keepalived/keepalived.conf ]; then
  log "starting keepalived"
  lab-vrrp start
fi

touch /run/lab-ready
log "ready"
# Stay in the foreground as PID 1's child reaper; SIGTERM ends the node.
trap 'log "stopping"; exit 0' TERM INT
sleep infinity &
wait $!
