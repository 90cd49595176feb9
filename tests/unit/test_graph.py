"""`lab graph` and the topology layout the console reuses: every built-in scenario drawn whole, legibly
(no box on another, every label inside its box, frames and bands holding only their own nodes), with
ids the console can find, and the command's bad input refused in one line with nothing left behind."""
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st
from importlib import resources
from typer.testing import CliRunner

from lab.model.schema import ExpressRouteGateway
from lab.plan.load import builtin_scenarios, load_plan
from lab.render.configs import render_strongswan
from lab.ui.cli import app
from lab.ui.topology import (FRAME_PAD, LABEL_PX, CAPTION_PX, LINE_H, SMALL_PX, Box, layout, render_png, render_svg,
                             text_width, xml_id, zone_lines)

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = builtin_scenarios()
SVG = "{http://www.w3.org/2000/svg}"
# XML 1.0's NCName, for the characters an id can hold here (ASCII).
NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
DOCKER_DOWN = {"DOCKER_HOST": "unix:///nonexistent.sock"}


@pytest.fixture(scope="module", params=SCENARIOS)
def drawn(request):
    plan = load_plan(request.param)
    topo = layout(plan)
    return plan, topo, ET.fromstring(render_svg(topo))


def by_id(svg):
    return {e.get("id"): e for e in svg.iter() if e.get("id") is not None}


def classes(element) -> set[str]:
    return set((element.get("class") or "").split())


def test_the_built_in_scenarios_are_the_seven_the_pictures_cover():
    assert SCENARIOS == ["active-active", "active-standby", "dual-redundancy", "expressroute-failover",
                         "expressroute-no-bfd", "zonal", "zone-redundant"]


def test_every_plan_node_is_drawn_once_with_its_state_slot(drawn):
    plan, topo, svg = drawn
    groups = [e for e in svg.iter(f"{SVG}g") if "node" in classes(e)]
    assert sorted(g.get("data-node") for g in groups) == sorted(plan.nodes)
    for g in groups:
        name = g.get("data-node")
        assert g.get("id") == f"node-{name}" and f"kind-{plan.nodes[name].kind}" in classes(g)
        texts = {t.get("class"): t for t in g.iter(f"{SVG}text")}
        assert texts["label"].text == name
        assert texts["state"].get("id") == f"state-{name}" and not texts["state"].text
    assert [n["name"] for n in topo.as_dict()["nodes"]] == list(plan.nodes)


def test_every_network_and_link_is_drawn(drawn):
    plan, topo, svg = drawn
    ids = by_id(svg)
    assert {f"net-{n}" for n in plan.scenario.networks} <= set(ids)
    for name, node in plan.nodes.items():
        for net in node.links:
            assert "link" in classes(ids[f"link-{name}.{net}"])
    assert {(link["node"], link["network"]) for link in topo.as_dict()["links"]} == \
           {(n, net) for n, node in plan.nodes.items() for net in node.links}


def test_every_tunnel_is_drawn_to_each_instance_with_each_ends_connection_name(drawn):
    plan, topo, svg = drawn
    ids = by_id(svg)
    tunnels = {t["name"]: t for t in topo.as_dict()["tunnels"]}
    assert set(tunnels) == {t.name for t in plan.tunnels}
    for t in plan.tunnels:
        path = ids[tunnels[t.name]["id"]]
        assert "tunnel" in classes(path) and path.get("data-tunnel") == t.name
        assert path.get("d").count("M") == len(t.instances)          # one sub-path per instance
        assert tunnels[t.name]["instances"] == list(t.instances)
        assert set(tunnels[t.name]["connections"]) == {t.device, *t.instances}
    # What VICI's ike-updown names is each node's swanctl connection: as rendered, not as assumed.
    for node in plan.nodes:
        swanctl = render_strongswan(plan, node)["strongswan/swanctl.conf"] if plan.tunnels_of(node) else ""
        rendered = set(re.findall(r"^  (\S+) \{$", swanctl, re.M))
        named = {t["connections"][node] for t in tunnels.values() if node in t["connections"]}
        assert named == rendered


def test_live_events_map_back_to_what_draws_them(drawn):
    plan, topo, _ = drawn
    for t in plan.tunnels:
        for node in (t.device, *t.instances):
            assert topo.tunnel_at(node, t.name) == xml_id("tunnel", t.name)
    assert topo.tunnel_at("no-such-node", "x") is None
    for b in plan.bgp_sessions:
        found = topo.sessions_at(b.node, str(b.peer_address))
        assert found and all(s.startswith("bgp-") for s in found)
        # More than one only where the peer address is shared (a VRRP group's) or rides a shared tunnel.
        assert len(found) == 1 or any(a == b.peer_address for g in plan.vrrp_groups for a, _, _ in g.addresses)


def _peer_owners(plan, session):
    """Who a session's peer address belongs to: a node's link, or the routers of a VRRP group sharing it."""
    on_link = {n for n, node in plan.nodes.items() if session.peer_address in node.links.values()}
    shared = {r for g in plan.vrrp_groups for a, _, _ in g.addresses if a == session.peer_address for r in g.routers}
    return on_link or shared


def test_every_bgp_session_is_drawn_once_per_pair_with_the_peer_address_each_end_sets(drawn):
    plan, topo, svg = drawn
    ids = by_id(svg)
    sessions = topo.as_dict()["bgp_sessions"]
    pairs = [(s["a"], s["b"], s["tunnel"] or s["peering"]) for s in sessions]
    assert len(pairs) == len(set(pairs))
    for s in sessions:
        path = ids[s["id"]]
        assert "bgp" in classes(path) and {path.get("data-a"), path.get("data-b")} == {s["a"], s["b"]}
        assert ("bfd" in classes(path)) == s["bfd"] and f"via-{s['kind']}" in classes(path)
        assert set(s["peers"]) <= {s["a"], s["b"]} and s["peers"]
    for b in plan.bgp_sessions:
        mine = [s for s in sessions if b.node in (s["a"], s["b"]) and s["peers"].get(b.node) == str(b.peer_address)
                and s["tunnel"] == b.tunnel and s["peering"] == b.peering]
        assert mine, f"{b.node} -> {b.peer_address} not drawn"
        for s in mine:
            other = s["b"] if s["a"] == b.node else s["a"]
            assert b.tunnel or b.peering or other in _peer_owners(plan, b)
            assert s["bfd"] == (b.bfd is not None)
            expected = "tunnel" if b.tunnel else "peering" if b.peering else None
            assert expected is None or s["kind"] == expected


def test_zone_bands_exactly_where_nodes_are_placed_in_zones(drawn):
    plan, topo, svg = drawn
    ids = by_id(svg)
    placed = {n.zone for n in plan.nodes.values() if n.zone is not None}
    zones = topo.as_dict()["zones"]
    if not placed:
        assert zones == [] and not [e for e in svg.iter() if "zone" in classes(e)]
        return
    assert [z["zone"] for z in zones] == [1, 2, 3]
    for z in zones:
        assert z["nodes"] == [n for n, node in plan.nodes.items() if node.zone == z["zone"]]
        assert "zone" in classes(ids[f"zone-{z['zone']}"])
    # A band holds its zone's nodes and no other node.
    for zone in topo.zones:
        for n in topo.nodes:
            if n.zone == zone.zone:
                assert zone.box.holds(n.box.left, n.box.top) and zone.box.holds(n.box.right, n.box.bottom)
            else:
                assert not zone.box.overlaps(n.box), f"{n.name} drawn in zone {zone.zone}"


def test_the_circuit_only_in_expressroute_scenarios(drawn):
    plan, topo, svg = drawn
    circuit = topo.as_dict()["circuit"]
    drawn_links = [e for e in svg.iter() if "circuit" in classes(e)]
    ers = [gw for gw in plan.scenario.gateways.values() if isinstance(gw, ExpressRouteGateway)]
    if not ers:
        assert circuit is None and drawn_links == []
        return
    assert [link["peering"] for link in circuit["links"]] == [c.peering for c in ers[0].circuit]
    assert [link["role"] for link in circuit["links"]] == ["primary", "secondary"]
    assert sorted(circuit["msees"]) == ["msee-0", "msee-1"]
    assert {e.get("id") for e in drawn_links} == {link["id"] for link in circuit["links"]}


def test_vrrp_groups_name_their_routers_and_address(drawn):
    plan, topo, svg = drawn
    ids = by_id(svg)
    groups = topo.as_dict()["vrrp_groups"]
    assert [(g["name"], g["members"], g["address"]) for g in groups] == \
           [(g.name, list(g.routers), str(g.addresses[0][0])) for g in plan.vrrp_groups]
    for g in groups:
        assert "vrrp" in classes(ids[g["id"]])


def test_ids_are_unique_and_valid_xml_ids(drawn):
    _, _, svg = drawn
    ids = [e.get("id") for e in svg.iter() if e.get("id") is not None]
    assert len(ids) == len(set(ids))
    assert all(NCNAME.fullmatch(i) for i in ids), [i for i in ids if not NCNAME.fullmatch(i)]


def test_the_console_finds_every_object_of_as_dict_in_the_svg(drawn):
    _, topo, svg = drawn
    ids = set(by_id(svg))
    d = json.loads(json.dumps(topo.as_dict()))    # JSON-ready as it is
    wanted = ([n["id"] for n in d["nodes"]] + [n["state_id"] for n in d["nodes"]] + [n["id"] for n in d["networks"]]
              + [t["id"] for t in d["tunnels"]] + [s["id"] for s in d["bgp_sessions"]] + [z["id"] for z in d["zones"]]
              + [g["id"] for g in d["gateways"]] + [g["id"] for g in d["vrrp_groups"]])
    assert set(wanted) <= ids


def _text_boxes(topo) -> list[tuple[str, Box]]:
    """Where each caption outside a node or network box is written: frames' and bands' own text."""
    boxes = []
    frames = [(g, False) for g in topo.gateways] + [(c.location, False) for c in topo.circuits] + \
             [(v.frame, True) for v in topo.vrrp_groups]
    for f, below in frames:
        height = len(f.lines) * LINE_H
        width = max(text_width(line, SMALL_PX, bold=True) for line in f.lines)
        top = f.box.bottom - height - 2 if below else f.box.top + 2
        boxes.append((f.id, Box(f.box.left + FRAME_PAD + width / 2, top + height / 2, width, height)))
    for z in topo.zones:
        lines = zone_lines(z)
        width = max(text_width(line, SMALL_PX, bold=True) for line in lines)
        height = len(lines) * LINE_H
        boxes.append((z.id, Box(z.box.left + 6 + width / 2, z.box.top + 4 + height / 2, width, height)))
    return boxes


def test_nothing_is_drawn_over_a_node_or_a_network(drawn):
    _, topo, _ = drawn
    boxes = [(n.name, n.box) for n in topo.nodes] + [(n.name, n.box) for n in topo.networks]
    for i, (a, box) in enumerate(boxes):
        for b, other in boxes[i + 1:]:
            assert not box.overlaps(other, margin=4), f"{a} and {b} overlap"
        for c, text in _text_boxes(topo):
            assert not box.overlaps(text), f"{c}'s caption is written over {a}"
    # A frame holds its members and no other box.
    frames = list(topo.gateways) + [c.location for c in topo.circuits] + [v.frame for v in topo.vrrp_groups]
    for f in frames:
        for n in topo.nodes:
            assert (n.name in f.members) == f.box.overlaps(n.box), f"{f.id} and {n.name}"
        for net in topo.networks:
            assert not f.box.overlaps(net.box), f"{f.id} and {net.name}"
        for c, text in _text_boxes(topo):
            assert c == f.id or not text.overlaps(f.box) or f.box.holds(text.left, text.top) and \
                f.box.holds(text.right, text.bottom), f"{c}'s caption is crossed by {f.id}"
    for z in topo.zones:
        for c, text in _text_boxes(topo):
            assert c == z.id or not text.overlaps(z.box) or z.box.holds(text.left, text.top) and \
                z.box.holds(text.right, text.bottom), f"{c}'s caption is crossed by {z.id}"
    bottom = max([b.bottom for _, b in boxes] + [f.box.bottom for f in frames] + [z.box.bottom for z in topo.zones])
    assert bottom < topo.height - 40          # the legend is below it all
    assert all(b.left > 0 and b.right < topo.width for _, b in boxes)


def test_every_label_fits_its_box_as_the_font_draws_it(drawn):
    # Measured with DejaVu Sans (matplotlib's own, and among the widest of the usual sans-serif faces).
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath
    measure = TextToPath()

    def width(text, px, bold):
        props = FontProperties(family="DejaVu Sans", size=px, weight="bold" if bold else "normal")
        return measure.get_text_width_height_descent(text, props, ismath=False)[0]

    _, topo, _ = drawn
    for n in topo.nodes:
        assert width(n.label, LABEL_PX, True) < n.box.w - 6 and width(n.caption, CAPTION_PX, False) < n.box.w - 6
    for net in topo.networks:
        assert width(net.name, SMALL_PX + 1, True) < net.box.w - 10 and width(net.subnet, SMALL_PX, False) < net.box.w - 10
    frames = [(f, True) for f in list(topo.gateways) + [c.location for c in topo.circuits]]
    for f, bold_title in frames + [(v.frame, False) for v in topo.vrrp_groups]:
        for i, line in enumerate(f.lines):
            assert FRAME_PAD + width(line, SMALL_PX, bold_title and i == 0) < f.box.w - 4, (f.id, line)


def test_the_png_is_a_png(drawn):
    _, topo, _ = drawn
    assert render_png(topo).startswith(b"\x89PNG\r\n\x1a\n")


def test_layout_is_deterministic():
    plan = load_plan("expressroute-failover")
    assert render_svg(layout(plan)) == render_svg(layout(plan))


def _scenario_with(tmp_path: Path, **changes) -> Path:
    scenario = yaml.safe_load((resources.files("lab") / "scenarios" / "active-standby.yaml").read_text())
    scenario.update(changes)
    path = tmp_path / "odd.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def test_text_is_escaped(tmp_path):
    description = 'tunnels <&> "quotes" & </svg> ]]> in it'
    topo = layout(load_plan(str(_scenario_with(tmp_path, description=description))))
    text = render_svg(topo)
    svg = ET.fromstring(text)                       # parses: nothing broke out of its element
    assert "<&>" not in text
    assert description in svg.find(f"{SVG}title").text
    shown = " ".join(t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "description")
    assert shown == description


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,38}[a-z0-9]", fullmatch=True), min_size=1, max_size=3),
                min_size=2, max_size=6, unique_by=tuple))
def test_ids_of_node_names_are_injective_and_valid(parts_list):
    ids = [xml_id("bgp", *parts) for parts in parts_list]
    assert len(set(ids)) == len(ids)
    assert all(NCNAME.fullmatch(i) for i in ids)
    assert all(xml_id("node", p[0]) == f"node-{p[0]}" for p in parts_list)    # a plain name is kept as it is


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["node", "net", "bgp", "tunnel"]),
                          st.lists(st.text(min_size=0, max_size=8), min_size=1, max_size=3).map(tuple)),
                min_size=2, max_size=6, unique=True))
def test_ids_of_any_text_are_injective_and_valid(keys):
    ids = [xml_id(prefix, *parts) for prefix, parts in keys]
    assert len(set(ids)) == len(ids)
    assert all(NCNAME.fullmatch(i) for i in ids)


# --- the command ------------------------------------------------------------------------


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args):
    return CliRunner().invoke(app, ["graph", *args], env=DOCKER_DOWN)


@pytest.mark.parametrize("args, message", [
    (["--format", "pdf"], "--format 'pdf': a graph is svg or png"),
    (["--format", "svg", "--out", "g.png"], "--out g.png: its suffix .png disagrees with --format svg"),
    (["--out", "g.txt"], "--out g.txt: a graph file ends in .svg or .png"),
    (["--out", "missing/g.svg"], "--out missing/g.svg: folder missing does not exist"),
    (["--out", "."], "--out .: is a folder; give a file name"),
    (["no-such-scenario"], "no-such-scenario: unknown scenario"),
], ids=["bad-format", "suffix-mismatch", "bad-suffix", "missing-folder", "a-folder", "unknown-scenario"])
def test_bad_input_gets_one_line_exit_2_and_no_file(here, args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert "Traceback" not in result.output
    assert list(here.rglob("*")) == []


@pytest.mark.parametrize("args, written, fmt", [
    ([], "active-standby.svg", "svg"),
    (["zonal", "--format", "png"], "zonal.png", "png"),
    (["expressroute-failover", "--out", "sub/er.png"], "sub/er.png", "png"),
    (["dual-redundancy", "--out", "dual"], "dual", "svg"),
])
def test_writes_the_graph_where_asked_and_prints_the_path(here, args, written, fmt):
    (here / "sub").mkdir()
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    path = here / written
    assert result.output.strip().endswith(str(Path(written).name))
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") if fmt == "png" else ET.fromstring(data).tag == f"{SVG}svg"
    assert sorted(p.name for p in here.rglob("*") if p.is_file()) == [Path(written).name]   # no temporary file left


def test_a_scenario_file_and_a_profile(here):
    path = _scenario_with(here, description="from a file")
    result = invoke(str(path), "--profile", "fast", "--out", "f.svg")
    assert result.exit_code == 0, result.output
    assert "profile fast" in (here / "f.svg").read_text()


def test_lab_graph_loads_no_docker():
    # The command's own modules, in a fresh interpreter: the picture needs the plan only.
    probe = ("import sys, lab.ui.graph_cli as g; from lab.plan.load import load_plan; "
             "g.render_graph(load_plan('expressroute-failover'), 'png'); "
             "print([m for m in ('docker', 'requests', 'vici', 'pyroute2') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_the_readme_pictures_are_up_to_date():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "graphs.py"), "--check"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-1000:]
