"""Hand-over: an active-standby instance is lost and the standby takes its addresses and tunnel."""
from __future__ import annotations

from lab.model.daemon_events import Event
from lab.model.errors import LabError
from lab.model.schema import LabPlan, VpnGateway
from lab.failover.faults import Fault, TargetSpec
from lab.failover.metrics import DirectionResult, Handover, Phase, breakdown
from lab.failover.stories.base import Story
from lab.plan.gateway_types import strategy_of


def handover_of(plan: LabPlan, target: str) -> Handover:
    """The nodes and sessions a failover of `target` must move: its standbys, devices and BGP addresses."""
    owner = plan.instance_gateway(target)
    if owner is None or not isinstance(owner[1], VpnGateway):
        raise LabError(f"{target} is not a VPN gateway instance")
    name, gateway = owner
    devices = tuple(dict.fromkeys(t.device for t in plan.tunnels if t.gateway == name))
    return Handover(
        target=target,
        standbys=tuple(i for i in gateway.instances if i != target),
        devices=devices,
        public_ip=str(gateway.public_ip.address),
        gateway_bgp_ip=str(gateway.bgp_peer_ip.address),
        device_bgp_ips=tuple(str(plan.scenario.nodes[d].bgp_peer_ip) for d in devices
                             if plan.scenario.nodes[d].bgp_peer_ip is not None),
    )


def _handing_over_instance(plan: LabPlan, spec: TargetSpec) -> str | None:
    """The instance the target takes from a gateway that hands over, when one of its instances is left."""
    for node in spec.nodes:
        owner = plan.instance_gateway(node)
        if owner is None or not strategy_of(owner[1]).hands_over:
            continue
        if any(i not in spec.nodes for i in owner[1].instances):
            return node
    return None


class HandoverStory(Story):
    name = "hand-over"
    summary = "detected -> public IP moved -> IKE re-established -> BGP Established -> traffic restored"

    @classmethod
    def applies(cls, plan: LabPlan, fault: Fault, spec: TargetSpec) -> bool:
        # A zone that takes the active instance along with other nodes is still a hand-over.
        return _handing_over_instance(plan, spec) is not None

    def phases(self, events: list[Event], fault_ns: int, until_ns: int,
               directions: list[DirectionResult]) -> list[Phase]:
        handover = handover_of(self.plan, _handing_over_instance(self.plan, self.spec))  # type: ignore[arg-type]
        return breakdown(events, fault_ns, until_ns, handover, directions)
