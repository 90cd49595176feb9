"""The VPN gateway: instances end IKEv2 tunnels; its mode is one of the redundancy strategies."""
from __future__ import annotations

from lab.model.schema import AnyGateway, Scenario, VpnGateway
from lab.plan.gateway_types.base import GatewayType
from lab.plan.redundancy import STRATEGIES, Strategy


class Vpn(GatewayType):
    type = "vpn"
    summary = "VPN gateway"
    vnet_weight = 32768
    vnet_weight_source = ("Using S2S VPN as a backup for ExpressRoute private peering: the VPN gateway shows "
                          "VPN-learned routes at weight 32768, ExpressRoute-learned ones at 32769")

    def strategy(self, mode: str) -> Strategy:
        return STRATEGIES[mode]

    def modes(self) -> list[str]:
        return list(STRATEGIES)

    def vnet_network(self, gw: AnyGateway) -> str:
        assert isinstance(gw, VpnGateway)
        return gw.bgp_peer_ip.network

    def default_sku(self, gw: AnyGateway) -> str:
        # Azure creates only AZ SKUs now: a gateway placed in zones is one of them by default.
        return gw.sku or ("VpnGw1AZ" if gw.zones != "regional" else "VpnGw1")

    def check(self, s: Scenario, name: str, gw: AnyGateway) -> list[str]:
        assert isinstance(gw, VpnGateway)
        if gw.mode not in STRATEGIES:
            return [f"gateways.{name}.mode: unknown mode {gw.mode!r} (a VPN gateway's: {', '.join(STRATEGIES)})"]
        return STRATEGIES[gw.mode].check(s, name, gw)

    def labels(self, s: Scenario, name: str, gw: AnyGateway, node: str) -> dict[str, str]:
        assert isinstance(gw, VpnGateway)
        mine = self.strategy(gw.mode).addresses(s, gw)[node]
        # The instance's public IP: status asks the strategy whether holding it makes it active.
        return {**super().labels(s, name, gw, node), "lab.public-ip": str(mine.public_ip)}
