// The console's page: plain JavaScript on the console's own JSON API and event stream.
// No library: the picture is the server's SVG (lab.ui.topology), coloured here by id; the
// strip chart and the timeline are a few SVG polylines and lines.
"use strict";

const WINDOW_MS = 60000;          // the strip chart's and the timeline's width
const RUN_WINDOW_MS = 500;        // a timed run's delivery, over this much of the latest ticks
const RUN_LOSS_BELOW = 0.8;       // a timed run's estimate counts as loss below this
const RUN_INTERVAL_MS = 20;       // a timed run's probe interval, unless the run asked for another
const COLOURS = ["#1565c0", "#e65100", "#6a1b9a", "#00838f", "#558b2f", "#ad1457"];
const KIND_COLOURS = { fault: "#c62828", restore: "#1b8a3a", "ike-up": "#1565c0", "ike-down": "#c62828",
  "child-up": "#1565c0", "child-down": "#c62828", "bgp-up": "#6a1b9a", "bgp-down": "#6a1b9a",
  "bfd-up": "#00838f", "bfd-down": "#00838f", "vrrp-master": "#e65100", "vrrp-backup": "#e65100", route: "#555" };

const page = {
  lab: null, topology: null, state: null,
  series: {},        // direction -> [{t, ratio}]
  outage: {},        // direction -> when delivery stopped (ms), while it is stopped
  lastOutage: null,
  events: [],        // [{t, kind, node, detail}]
  runProbes: {},     // direction -> a timed run's latest ticks
  runIntervalMs: RUN_INTERVAL_MS,
  operation: null,
};

const $ = (id) => document.getElementById(id);

function text(el, value) { el.textContent = value == null ? "" : String(value); }

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin", ...options,
    headers: { "X-Lab-Console": "1", "Content-Type": "application/json", ...(options.headers || {}) },
  });
  if (response.status === 401) { $("login").hidden = false; throw new Error("a token is needed"); }
  return response;
}

async function json(path, options) {
  const response = await api(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function fill(select, values, chosen) {
  select.replaceChildren(...values.map((v) => {
    const option = document.createElement("option");
    option.value = v; option.textContent = v; option.selected = v === chosen;
    return option;
  }));
}

function faultNamed(name) { return page.lab.faults.find((f) => f.name === name); }

function fillTargets(faultSelect, targetSelect) {
  const fault = faultNamed(faultSelect.value);
  fill(targetSelect, fault ? fault.targets : [], fault ? fault.default : null);
}

// -- the picture --------------------------------------------------------------------------------
function setClass(el, names, on) { names.forEach((n) => el.classList.toggle(n, on.includes(n))); }

function tunnelEndsOf(tunnel) {
  // The device's end says whether the tunnel is up; which instance serves it is the node's colour.
  const name = (tunnel.connections || {})[tunnel.device] || tunnel.name;
  return (page.state ? page.state.tunnels : []).filter((t) => t.node === tunnel.device && t.tunnel === name);
}

function sessionUp(session) {
  const ends = (page.state ? page.state.sessions : []).filter((s) =>
    Object.entries(session.peers || {}).some(([node, peer]) => s.node === node && s.peer === peer));
  if (!ends.length) return null;
  return { up: ends.some((s) => s.state === "Established"), bfdDown: ends.some((s) => s.bfd === "down") };
}

function colourTopology() {
  const svg = $("topology").querySelector("svg");
  if (!svg || !page.topology || !page.state) return;
  const active = new Set(Object.values(page.state.active).flat());
  const holders = {};
  Object.entries(page.state.vrrp).forEach(([group, g]) => g.holders.forEach((h) => (holders[h] = [...(holders[h] || []), group])));
  for (const node of page.topology.nodes) {
    const el = svg.getElementById(node.id);
    if (!el) continue;
    const info = page.state.nodes[node.name] || {};
    const isInstance = !!node.gateway;
    const classes = [info.running ? "running" : "stopped"];
    if (isInstance && active.has(node.name)) classes.push("active");
    if (isInstance && info.running && !active.has(node.name)) classes.push("standby");
    setClass(el, ["running", "stopped", "active", "standby"], classes);
    const label = el.querySelector(".state");
    if (label) {
      const words = [];
      if (!info.running) words.push(info.status === "missing" ? "gone" : (info.status || "stopped"));
      else if (isInstance) words.push(active.has(node.name) ? "active" : "standby");
      if (holders[node.name]) words.push("VRRP " + holders[node.name].join(", "));
      text(label, words.join(" · "));
    }
  }
  for (const tunnel of page.topology.tunnels || []) {
    const el = svg.getElementById(tunnel.id);
    if (!el) continue;
    const ends = tunnelEndsOf(tunnel);
    const up = ends.some((t) => t.up);
    setClass(el, ["up", "down"], ends.length ? [up ? "up" : "down"] : ["down"]);
  }
  for (const session of page.topology.bgp_sessions || []) {
    const el = svg.getElementById(session.id);
    if (!el) continue;
    const seen = sessionUp(session);
    setClass(el, ["up", "down", "bfd-down"], seen == null ? [] : [seen.up ? "up" : "down", ...(seen.bfdDown ? ["bfd-down"] : [])]);
  }
  // A circuit's link is up while its peering's BGP session is.
  for (const circuit of page.topology.circuits || []) {
    for (const link of circuit.links) {
      const el = svg.getElementById(link.id);
      const session = (page.topology.bgp_sessions || []).find((s) => s.peering === link.peering);
      const seen = session ? sessionUp(session) : null;
      if (el) setClass(el, ["up", "down"], seen == null ? [] : [seen.up ? "up" : "down"]);
    }
  }
}

// -- the tables ----------------------------------------------------------------------------------
function row(cells, classes = []) {
  const tr = document.createElement("tr");
  cells.forEach((c, i) => { const td = document.createElement("td"); text(td, c); if (classes[i]) td.className = classes[i]; tr.append(td); });
  return tr;
}

function rate(value) { return value == null ? "-" : value.toFixed(0); }

function renderState() {
  const s = page.state;
  const pill = $("converged");
  text(pill, s.converged ? "converged" : "not converged");
  pill.className = "pill " + (s.converged ? "up" : "down");
  pill.title = s.unconverged.join("\n");
  text($("faults"), s.faults.length ? "faults in place: " + s.faults.join("; ") : "");
  text($("active"), "active: " + (Object.entries(s.active).map(([g, a]) => `${g}: ${a.join(", ") || "none"}`).join("; ") || "-"));
  $("tunnels").tBodies[0].replaceChildren(...s.tunnels.map((t) =>
    row([t.node, t.tunnel, t.ike, t.child, `${rate(t.pps_in)} / ${rate(t.pps_out)}`],
      ["", "", t.up ? "up" : "down", t.up ? "up" : "down", ""])));
  $("sessions").tBodies[0].replaceChildren(...s.sessions.map((b) =>
    row([b.node, `${b.peer} ${b.description}`, b.state, b.bfd],
      ["", "", b.state === "Established" ? "up" : "down", b.bfd === "up" ? "up" : b.bfd === "down" ? "down" : ""])));
  $("vrrp").tBodies[0].replaceChildren(...Object.entries(s.vrrp).map(([name, g]) =>
    row([name, g.address, g.holders.join(", ") || "nobody"], ["", "", g.holders.length === 1 ? "up" : "down"])));
  $("paths").tBodies[0].replaceChildren(...s.paths.map((p) =>
    row([p.node, p.prefix, p.carrier || "nothing"], ["", "", p.carrier ? "up" : "down"])));
  colourTopology();
}

// -- the strip chart -----------------------------------------------------------------------------
function addDelivery(direction, ratio, now, lossBelow = 1) {
  const series = (page.series[direction] = page.series[direction] || []);
  series.push({ t: now, ratio });
  while (series.length && series[0].t < now - WINDOW_MS) series.shift();
  // An outage: from the first point that lost probes to the first that lost none again (below
  // `lossBelow`: a timed run's points are estimates, a tenth either way).
  const open = page.outage[direction];
  if (ratio < lossBelow && open == null) page.outage[direction] = { since: now, lowest: ratio };
  else if (ratio < lossBelow) open.lowest = Math.min(open.lowest, ratio);
  else if (open != null) {
    page.lastOutage = { direction, seconds: (now - open.since) / 1000, lowest: open.lowest };
    delete page.outage[direction];
  }
}

function deliveryTick(message) {
  // The console's own probes: what one bin of sending time delivered, counted once it settled.
  addDelivery(message.direction, message.delivered / message.sent, message.at_ms);
}

function probeTick(message) {
  // A timed run's probes: the slots delivered over the last half second against the slots sent
  // in it (one every interval). Half a second evens out the bursts in which receipts reach us.
  const now = Date.now(), key = message.direction;
  const history = (page.runProbes[key] = page.runProbes[key] || []);
  if (history.length && (history[history.length - 1].run !== message.run ||
                         message.delivered < history[history.length - 1].delivered)) history.length = 0;
  history.push({ t: now, run: message.run, delivered: message.delivered });
  while (history.length > 1 && history[1].t <= now - RUN_WINDOW_MS) history.shift();
  const first = history[0], elapsed = (now - first.t) / 1000;
  if (elapsed < RUN_WINDOW_MS / 2000) return;
  const expected = elapsed / (page.runIntervalMs / 1000);
  addDelivery(key, Math.max(0, Math.min(1, (message.delivered - first.delivered) / expected)), now, RUN_LOSS_BELOW);
}

function drawChart() {
  const svg = $("chart"), now = Date.now();
  const x = (t) => 600 - ((now - t) / WINDOW_MS) * 600;
  const parts = ['<line x1="0" y1="10" x2="600" y2="10" stroke="#ccc"/><line x1="0" y1="150" x2="600" y2="150" stroke="#ccc"/>'];
  const legend = [];
  Object.keys(page.series).sort().forEach((direction, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const points = page.series[direction].map((p) => `${x(p.t).toFixed(1)},${(150 - p.ratio * 140).toFixed(1)}`).join(" ");
    parts.push(`<polyline class="delivery" data-direction="${i}" fill="none" stroke="${colour}" stroke-width="2" points="${points}"/>`);
    legend.push([colour, direction]);
  });
  page.events.filter((e) => e.kind === "fault" || e.kind === "restore").forEach((e) => {
    parts.push(`<line x1="${x(e.t).toFixed(1)}" y1="0" x2="${x(e.t).toFixed(1)}" y2="160" stroke="${KIND_COLOURS[e.kind]}" stroke-dasharray="4 3"/>`);
  });
  svg.innerHTML = parts.join("");
  $("chart-legend").replaceChildren(...legend.map(([colour, name]) => {
    const span = document.createElement("span"), i = document.createElement("i");
    i.style.background = colour; span.append(i, document.createTextNode(name)); return span;
  }));
  const open = Object.entries(page.outage);
  const percent = (ratio) => `${Math.round(ratio * 100)}%`;
  if (open.length) {
    text($("outage"), "outage now: " + open.map(([d, o]) =>
      `${d} ${((now - o.since) / 1000).toFixed(1)} s (delivery down to ${percent(o.lowest)})`).join("; "));
  } else if (page.lastOutage) {
    const o = page.lastOutage;
    text($("outage"), `last outage: ${o.direction} about ${o.seconds.toFixed(1)} s (delivery down to ${percent(o.lowest)}; ` +
      "counted in quarter-second bins of sending time: a timed failover measures it)");
  } else {
    text($("outage"), "");
  }
  drawTimeline(now);
}

function drawTimeline(now) {
  const x = (t) => 600 - ((now - t) / WINDOW_MS) * 600;
  $("timeline").innerHTML = page.events.filter((e) => e.t > now - WINDOW_MS).map((e) => {
    const colour = KIND_COLOURS[e.kind] || "#555", px = x(e.t).toFixed(1);
    return `<line x1="${px}" y1="5" x2="${px}" y2="65" stroke="${colour}" stroke-width="2"><title></title></line>`;
  }).join("");
  // Titles as text nodes: an event's detail never becomes markup.
  const lines = $("timeline").querySelectorAll("title");
  page.events.filter((e) => e.t > now - WINDOW_MS).forEach((e, i) => { if (lines[i]) text(lines[i], `${e.node} ${e.kind} ${e.detail}`); });
}

function addEvent(kind, node, detail) {
  const t = Date.now();
  page.events.push({ t, kind, node, detail });
  if (page.events.length > 500) page.events.shift();
  const li = document.createElement("li");
  li.className = kind;
  text(li, `${new Date(t).toISOString().slice(11, 23)}  ${node}  ${kind}  ${detail}`);
  $("events").prepend(li);
  while ($("events").children.length > 200) $("events").lastChild.remove();
}

// -- operations ----------------------------------------------------------------------------------
function busy(on) {
  ["break-button", "repair-button", "failover-button"].forEach((id) => ($(id).disabled = on));
}

function showOperation(op) {
  page.operation = op;
  if (op.name === "failover") page.runIntervalMs = (op.request && op.request.interval_ms) || RUN_INTERVAL_MS;
  const el = $("operation");
  el.className = "operation " + op.state;
  const what = op.name + (op.request && op.request.fault ? ` ${op.request.fault} on ${op.request.target || "(default)"}` : "");
  let line = `${what}: ${op.state}`;
  if (op.state === "failed") line += ` — ${op.error}`;
  if (op.state === "done" && op.result && op.result.done) line += ` — ${[].concat(op.result.done).join("; ")}`;
  text(el, line);
  busy(op.state === "running");
  if (op.state !== "running") text($("stage"), "");
  if (op.name === "failover" && op.state === "done") showResult(op);
}

function showResult(op) {
  const r = op.result;
  $("result").hidden = false;
  const verdict = $("verdict");
  text(verdict, r.verdict); verdict.className = r.verdict;
  text($("verdict-target"), `target ${r.target_s} s; rate-derived ${r.rate_derived_s == null ? "not converged" : r.rate_derived_s.toFixed(2) + " s"}`);
  text($("verdict-source"), "source: " + r.target_source);
  $("phases").tBodies[0].replaceChildren(...r.phases.map((p) => row([p.name, p.at_s == null ? "not observed" : p.at_s.toFixed(2) + " s"])));
  $("report-files").replaceChildren(...Object.entries(op.files).map(([name, href]) => {
    const li = document.createElement("li"), a = document.createElement("a");
    a.href = href; a.textContent = name; a.target = "_blank"; li.append(a); return li;
  }));
}

async function start(name, body) {
  try {
    busy(true);
    showOperation(await json(`/api/${name}`, { method: "POST", body: JSON.stringify(body) }));
  } catch (error) {
    busy(false);
    const el = $("operation"); el.className = "operation failed"; text(el, `${name}: ${error.message}`);
  }
}

async function capture() {
  const node = $("capture-node").value, link = $("capture-link").value;
  const query = new URLSearchParams({ node, seconds: $("capture-seconds").value });
  if (link && link !== "any") query.set("link", link);
  if ($("capture-filter").value.trim()) query.set("filter", $("capture-filter").value.trim());
  const status = $("capture-status");
  text(status, `capturing on ${node} for ${$("capture-seconds").value} s...`);
  $("capture-button").disabled = true;
  try {
    const response = await api(`/api/capture?${query}`);
    if (!response.ok) throw new Error((await response.json()).error);
    const blob = await response.blob();
    const name = (response.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = name ? name[1] : "capture.pcap"; a.id = "capture-download";
    document.body.append(a); a.click(); a.remove();
    text(status, `${a.download}: ${blob.size} bytes`);
  } catch (error) {
    text(status, "capture: " + error.message);
  } finally {
    $("capture-button").disabled = false;
  }
}

// -- the stream ----------------------------------------------------------------------------------
function onMessage(message) {
  switch (message.type) {
    case "state": page.state = message.state; renderState(); break;
    case "delivery": deliveryTick(message); break;
    case "probe": probeTick(message); break;
    case "control": addEvent(message.kind, message.node, message.detail); break;
    case "stage": text($("stage"), message.text + (message.detail ? `: ${message.detail}` : "") +
      (message.run ? ` (run ${message.run} of ${message.runs})` : "")); break;
    case "note": addEvent("note", "", message.text); break;
    case "phase": addEvent("phase", "", `${message.phase} ${message.at_s == null ? "not observed" : message.at_s.toFixed(2) + " s"}`); break;
    case "operation": showOperation(message.operation); break;
    default: break;
  }
}

function connect() {
  const source = new EventSource("/api/events");
  source.onmessage = (e) => onMessage(JSON.parse(e.data));
  source.onerror = () => { text($("stage"), "connection lost: reconnecting"); };
  source.onopen = () => { text($("stage"), ""); };
}

async function main() {
  page.lab = await json("/api/lab");
  text($("title"), `lab ${page.lab.lab} · ${page.lab.scenario} · profile ${page.lab.profile}`);
  document.title = `lab ${page.lab.lab}`;
  const faults = page.lab.faults.map((f) => f.name);
  fill($("break-fault"), faults, "kill");
  fill($("failover-fault"), faults, "kill");
  fill($("failover-profile"), page.lab.profiles, page.lab.profile);
  fillTargets($("break-fault"), $("break-target"));
  fillTargets($("failover-fault"), $("failover-target"));
  $("break-fault").onchange = () => fillTargets($("break-fault"), $("break-target"));
  $("failover-fault").onchange = () => fillTargets($("failover-fault"), $("failover-target"));
  fill($("capture-node"), page.lab.nodes.map((n) => n.name));
  const links = () => fill($("capture-link"), ["any", ...page.lab.nodes.find((n) => n.name === $("capture-node").value).links]);
  $("capture-node").onchange = links; links();
  $("break-button").onclick = () => start("break", { fault: $("break-fault").value, target: $("break-target").value });
  $("repair-button").onclick = () => start("repair", {});
  $("failover-button").onclick = () => start("failover", { fault: $("failover-fault").value,
    target: $("failover-target").value, profile: $("failover-profile").value });
  $("capture-button").onclick = capture;
  page.topology = await json("/api/topology");
  const svg = await api("/api/topology.svg");
  $("topology").innerHTML = await svg.text();
  connect();
  setInterval(drawChart, 250);
}

$("login-form").onsubmit = async (e) => {
  e.preventDefault();
  const response = await fetch("/api/login", { method: "POST", credentials: "same-origin",
    headers: { "X-Lab-Console": "1", "Content-Type": "application/json" },
    body: JSON.stringify({ token: $("login-token").value }) });
  if (response.ok) { $("login").hidden = true; main().catch(report); }
};

function report(error) { const el = $("operation"); el.className = "operation failed"; text(el, error.message); }

main().catch(report);
