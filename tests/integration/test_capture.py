"""`lab capture` on real containers (fast profile): the VPN device's tunnel re-established while tcpdump
runs in it shows IKE_SA_INIT in clear, IKE_AUTH as ciphertext and ESP-in-UDP with the new SA's first
sequence numbers, and the pre-shared key, loaded into charon again during the capture, is nowhere in it."""
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from lab.run import lifecycle
from lab.run.capture import ipsec_packets, read_pcap
from lab.run.state import lab_dir
from lab.run.status import running_node
from lab.session import LabSession

from .conftest import start_lab

CAPTURE_S = 6
INITIATE_WITHIN_S = 20
INIT_CONTACT = "generating IKE_AUTH request 1 [ IDi N(INIT_CONTACT)"


@pytest.fixture(scope="module")
def capture_lab(adapters, state_dir):
    plan, status, _ = start_lab(adapters, "fast")
    assert status.converged, status.unconverged_reasons()
    yield plan
    lifecycle.down(plan.lab, adapters)


def in_node(adapters, container, *argv, within_s=10.0):
    code, output = adapters.runtime.exec(container, list(argv), timeout_s=within_s)
    assert code == 0, f"{' '.join(argv)}: {output}"
    return output


def test_a_capture_on_the_vpn_device_shows_ike_and_esp_and_never_the_key(capture_lab, adapters):
    plan = capture_lab
    tunnel = plan.tunnels[0]
    device = plan.nodes[tunnel.device]
    log_before = adapters.runtime.read_file(device.container, "/var/log/charon.log")
    session = LabSession.from_plan(plan, adapters=adapters)
    with ThreadPoolExecutor(1) as pool:
        taking = pool.submit(session.capture, device.name, seconds=CAPTURE_S)
        # Bounded: tcpdump runs in the node before the SA is touched.
        Retrying(stop=stop_after_delay(10), wait=wait_fixed(0.1), retry=retry_if_result(lambda running: not running),
                 reraise=True)(lambda: adapters.runtime.exec(device.container, ["pgrep", "-x", "tcpdump"])[0] == 0)
        # The key goes to charon over VICI, a unix socket: sent again now, inside the capture's window.
        in_node(adapters, device.container, "swanctl", "--load-creds")
        in_node(adapters, device.container, "swanctl", "--terminate", "--ike", tunnel.name)
        in_node(adapters, device.container, "swanctl", "--initiate", "--ike", tunnel.name, "--child", tunnel.name,
                "--timeout", str(INITIATE_WITHIN_S), within_s=INITIATE_WITHIN_S + 5)
        data = taking.result(timeout=CAPTURE_S + 30)

    found = ipsec_packets(read_pcap(data))
    ike = [(p.exchange, p.response) for p in found if p.kind == "IKE"]
    assert ("IKE_SA_INIT", False) in ike and ("IKE_SA_INIT", True) in ike, ike
    assert ("IKE_AUTH", False) in ike and ("IKE_AUTH", True) in ike, ike
    for p in found:
        if p.exchange == "IKE_SA_INIT":     # in clear, on 500: the proposals, the DH public value, the nonce
            assert p.payloads[:3] == ("SA", "KE", "No") and p.datagram.destination_port == 500, p
        if p.exchange == "IKE_AUTH":        # after the non-ESP marker on 4500, and nothing but ciphertext
            assert p.payloads == ("SK",) and p.datagram.destination_port == 4500, p
    # Every IKE message and ESP packet went over the device's public link.
    internet = adapters.links_for(running_node(adapters.runtime, plan.lab, device.name)).link_indexes()["internet"]
    assert {p.datagram.interface_index for p in found} == {internet}
    # ESP in UDP 4500 on the new SA: sent from its first sequence number once IKE_AUTH was answered.
    answered = max(p.datagram.seconds for p in found if p.exchange == "IKE_AUTH" and p.response)
    sent = [p for p in found if p.kind == "ESP" and p.datagram.seconds > answered
            and str(p.datagram.source) == str(tunnel.device_public_ip)]
    assert sent and min(p.sequence for p in sent) == 1 and len({p.spi for p in sent}) == 1, sent[:3]

    psk = json.loads((lab_dir(plan.lab) / "psk.json").read_text())[tunnel.name]
    assert len(psk) >= 8 and psk.encode() not in data
    # What the wire hides, charon's log (level 1) says, without the key: INITIAL_CONTACT in IKE_AUTH.
    log = adapters.runtime.read_file(device.container, "/var/log/charon.log")
    assert log.count(INIT_CONTACT) > log_before.count(INIT_CONTACT)
    assert psk not in log
