// homestream dashboard: plain JS, served by the gateway, no build step and no CDN.
// REST for sign-in, homes, scenes, automations, notifications, the logbook and history; the
// WebSocket (/v1/ws) for the snapshot, live device events and commands.
// automations.js (loaded after this file) has the automation editor, run traces and
// the home's mode switch; it uses the helpers here (api, el, homePath, state).
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const kid of kids) node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return node;
};

const state = {
  token: sessionStorage.getItem("hs_token"),
  home: sessionStorage.getItem("hs_home"),
  devices: new Map(), // device_id -> device (with version)
  socket: null,
  retry: 0,
  requests: new Map(), // request_id -> device_id
  started: false, // start() ran (signed in, or a kept token on a reachable gateway)
};

// ---- REST -------------------------------------------------------------------------
// `body` is sent as JSON; `text` as it is, with `contentType` (a YAML automation).
// A failed request throws an Error with `status` and the error's `details` (422: one
// entry per problem, with its field path and, for YAML, its line).
async function api(path, { method = "GET", body, text, contentType } = {}) {
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  let payload;
  if (text !== undefined) {
    headers["Content-Type"] = contentType || "text/plain";
    payload = text;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload });
  if (res.status === 401 && state.token) {
    signOut("Your session has expired: sign in again.");
    throw new Error("unauthorised");
  }
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) {
    const err = new Error(data?.error?.message || `${res.status} ${res.statusText}`);
    err.status = res.status;
    err.details = data?.error?.details || [];
    throw err;
  }
  return data;
}

// ---- sign in / out ----------------------------------------------------------------
$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("#login-error").textContent = "";
  try {
    const data = await api("/v1/auth/token", {
      method: "POST",
      body: { username: $("#username").value, password: $("#password").value },
    });
    state.token = data.access_token;
    sessionStorage.setItem("hs_token", state.token);
    await start();
  } catch (err) {
    $("#login-error").textContent = err.message === "unauthorised" ? "" : err.message;
  }
});

$("#sign-out").addEventListener("click", () => signOut());

function signOut(message = "") {
  state.token = null;
  state.started = false;
  sessionStorage.removeItem("hs_token");
  if (state.socket) state.socket.close();
  $("#dashboard").hidden = true;
  $("#session").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
}

async function start() {
  state.started = true;
  const homes = await api("/v1/homes");
  const list = Array.isArray(homes) ? homes : homes.homes || [];
  const select = $("#home-select");
  select.replaceChildren(
    ...list.map((h) => el("option", { value: h.home_id ?? h.id }, `${h.name ?? h.home_id} (${h.role})`)),
  );
  if (!list.length) {
    $("#login-error").textContent = "This login has no homes yet.";
    return;
  }
  const ids = list.map((h) => h.home_id ?? h.id);
  state.home = ids.includes(state.home) ? state.home : ids[0];
  select.value = state.home;
  $("#login").hidden = true;
  $("#session").hidden = false;
  $("#dashboard").hidden = false;
  openHome(state.home);
}

$("#home-select").addEventListener("change", (ev) => openHome(ev.target.value));

function openHome(home) {
  state.home = home;
  sessionStorage.setItem("hs_home", home);
  state.devices.clear();
  $("#rooms").replaceChildren(el("p", { class: "muted" }, "Loading devices..."));
  connect();
  loadScenes();
  loadMode();
  loadAutomations();
  loadNotifications();
  loadLogbook();
}

// ---- the live connection ----------------------------------------------------------
function connect() {
  if (state.socket) {
    state.socket.onclose = null;
    state.socket.close();
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/ws?access_token=${encodeURIComponent(state.token)}`);
  state.socket = ws;
  ws.onopen = () => {
    state.retry = 0;
    $("#conn").textContent = "live";
    $("#conn").classList.add("live");
    ws.send(JSON.stringify({ type: "subscribe", home_id: state.home }));
  };
  ws.onclose = () => {
    $("#conn").textContent = "offline";
    $("#conn").classList.remove("live");
    if (!state.token) return;
    const wait = Math.min(30000, 500 * 2 ** state.retry++);
    setTimeout(() => state.token && state.socket === ws && connect(), wait);
  };
  ws.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (msg.home_id && msg.home_id !== state.home) return;
    const handler = handlers[msg.type];
    if (handler) handler(msg);
    if (msg.type !== "pong" && msg.type !== "snapshot") scheduleLogbook();
  };
}

const handlers = {
  snapshot(msg) {
    state.devices.clear();
    for (const d of msg.devices || []) state.devices.set(d.device_id, normalise(d));
    renderRooms();
  },
  "device.state"(msg) {
    const d = state.devices.get(msg.device_id);
    if (!d || (msg.version ?? 0) <= (d.version ?? 0)) return; // ordered by version
    d.version = msg.version;
    d.reported = msg.reported ?? { ...d.reported, ...msg.changed };
    d.delta = msg.delta ?? d.delta;
    d.lastSeen = msg.ts ?? d.lastSeen;
    updateTile(d, true);
  },
  "device.desired"(msg) {
    const d = state.devices.get(msg.device_id);
    if (!d || (msg.version ?? 0) <= (d.version ?? 0)) return;
    d.version = msg.version;
    d.desired = msg.desired ?? d.desired;
    updateTile(d, false);
  },
  "device.online"(msg) {
    const d = state.devices.get(msg.device_id);
    if (!d) return;
    d.online = msg.online;
    updateTile(d, false);
  },
  "device.added"(msg) {
    const ws = state.socket;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "subscribe", home_id: state.home }));
  },
  "device.removed"(msg) {
    state.devices.delete(msg.device_id);
    renderRooms();
  },
  "command.status"(msg) {
    const id = msg.device_id || state.requests.get(msg.request_id);
    const tile = id && document.getElementById(tileId(id));
    if (tile) tile.querySelector(".status").textContent = `${msg.command ?? "command"}: ${msg.status}`;
  },
  notification(msg) {
    addNotification(msg);
  },
  "automation.run"(msg) {
    onAutomationRun(msg); // automations.js
  },
  "scene.status"(msg) {
    const btn = document.querySelector(`[data-scene="${CSS.escape(msg.scene_id || "")}"]`);
    if (btn) btn.title = msg.status;
  },
  resync() {
    state.socket?.send(JSON.stringify({ type: "subscribe", home_id: state.home }));
  },
  error(msg) {
    if (msg.code === "resync") return handlers.resync(msg);
    console.warn("gateway:", msg.code, msg.message);
  },
  pong() {},
};

function normalise(d) {
  return {
    ...d,
    reported: d.reported ?? d.state ?? {},
    desired: d.desired ?? {},
    capabilities: d.capabilities ?? [],
    version: d.version ?? 0,
    lastSeen: d.lastSeen ?? d.last_seen,
  };
}

// ---- rooms and tiles --------------------------------------------------------------
const tileId = (id) => `tile-${id}`;

function renderRooms() {
  const rooms = new Map();
  for (const d of state.devices.values()) {
    const room = d.room || "Other";
    if (!rooms.has(room)) rooms.set(room, []);
    rooms.get(room).push(d);
  }
  const sections = [...rooms.keys()].sort().map((room) => {
    const tiles = rooms.get(room).sort((a, b) => (a.name || "").localeCompare(b.name || "")).map(buildTile);
    return el("section", { class: "room" }, el("h2", {}, room), el("div", { class: "tiles" }, ...tiles));
  });
  $("#rooms").replaceChildren(...(sections.length ? sections : [el("p", { class: "muted" }, "No devices yet.")]));
}

function buildTile(d) {
  const tile = el(
    "article",
    { class: "tile", id: tileId(d.device_id), "data-device": d.device_id },
    el("div", { class: "name" }, d.name || d.device_id),
    el("div", { class: "meta" }, el("span", { class: "type" }, d.type || ""), el("span", { class: "battery" })),
    el("div", { class: "state" }),
    el("div", { class: "controls" }, ...controlsFor(d)),
    el("div", { class: "meta" }, el("span", { class: "status" }), el("button", { type: "button", class: "history", onclick: () => openHistory(d.device_id) }, "History")),
  );
  fillTile(tile, d);
  return tile;
}

function updateTile(d, flash) {
  const tile = document.getElementById(tileId(d.device_id));
  if (!tile) return renderRooms();
  fillTile(tile, d);
  if (flash) {
    tile.classList.add("flash");
    setTimeout(() => tile.classList.remove("flash"), 600);
  }
}

function fillTile(tile, d) {
  const r = d.reported || {};
  tile.dataset.version = d.version;
  tile.classList.toggle("on", r.powerState === "ON");
  tile.classList.toggle("offline", d.online === false);
  tile.querySelector(".state").textContent = describe(r, d.online);
  const battery = r.battery ?? d.battery;
  tile.querySelector(".battery").textContent = battery !== undefined && battery !== null ? `battery ${battery}%` : "";
  // Reflect the reported state in the controls, unless the user is moving one.
  for (const input of tile.querySelectorAll("[data-attr]")) {
    if (document.activeElement === input) continue;
    const v = r[input.dataset.attr];
    if (v === undefined) continue;
    if (input.type === "color") input.value = hsToHex(v.hue ?? 0, v.saturation ?? 0);
    else input.value = v;
  }
  const power = tile.querySelector("button.power");
  if (power) power.textContent = r.powerState === "ON" ? "Turn off" : "Turn on";
  const lock = tile.querySelector("button.lock");
  if (lock) lock.textContent = r.lockState === "LOCKED" ? "Unlock" : "Lock";
}

function describe(r, online) {
  if (online === false) return "offline";
  const parts = [];
  if (r.powerState) parts.push(r.powerState === "ON" ? "On" : "Off");
  if (r.brightness !== undefined && r.powerState !== "OFF") parts.push(`${r.brightness}%`);
  if (r.temperature !== undefined) parts.push(`${r.temperature} °C`);
  if (r.targetTemperature !== undefined) parts.push(`→ ${r.targetTemperature} °C ${r.mode ?? ""}`.trim());
  if (r.humidity !== undefined) parts.push(`${r.humidity}% RH`);
  if (r.illuminance !== undefined) parts.push(`${r.illuminance} lx`);
  if (r.lockState) parts.push(r.lockState === "LOCKED" ? "Locked" : "Unlocked");
  if (r.contact) parts.push(r.contact === "open" ? "Open" : "Closed");
  if (r.motion !== undefined) parts.push(r.motion ? "Motion" : "No motion");
  if (r.position !== undefined) parts.push(`${r.position}% open`);
  return parts.join(" · ");
}

function controlsFor(d) {
  const caps = new Set(d.capabilities);
  const out = [];
  const send = (capability, command, parameters = {}) => sendCommand(d.device_id, capability, command, parameters);
  if (caps.has("ON_OFF")) {
    out.push(el("button", { type: "button", class: "power primary", onclick: () => {
      const on = (state.devices.get(d.device_id)?.reported || {}).powerState === "ON";
      send("ON_OFF", on ? "turnOff" : "turnOn");
    } }, "Turn on"));
  }
  if (caps.has("BRIGHTNESS")) {
    out.push(el("label", {}, "Brightness",
      el("input", { type: "range", min: 0, max: 100, "data-attr": "brightness", "aria-label": "brightness",
        onchange: (ev) => send("BRIGHTNESS", "setBrightness", { brightness: Number(ev.target.value) }) })));
  }
  if (caps.has("COLOR_CONTROL")) {
    out.push(el("label", {}, "Colour ",
      el("input", { type: "color", "data-attr": "color", "aria-label": "colour",
        onchange: (ev) => send("COLOR_CONTROL", "setColor", hexToHs(ev.target.value)) })));
  }
  if (caps.has("THERMOSTAT")) {
    out.push(el("label", {}, "Target °C ",
      el("input", { type: "number", step: "0.5", min: 5, max: 35, "data-attr": "targetTemperature", style: "width:5em",
        onchange: (ev) => send("THERMOSTAT", "setTemperature", { temperature: Number(ev.target.value) }) })));
    out.push(el("select", { "data-attr": "mode", "aria-label": "mode", onchange: (ev) => send("THERMOSTAT", "setMode", { mode: ev.target.value }) },
      ...["heat", "cool", "auto", "off"].map((m) => el("option", { value: m }, m))));
  }
  if (caps.has("LOCK")) {
    out.push(el("button", { type: "button", class: "lock", onclick: () => {
      const locked = (state.devices.get(d.device_id)?.reported || {}).lockState === "LOCKED";
      send("LOCK", locked ? "unlock" : "lock");
    } }, "Lock"));
  }
  if (caps.has("POSITION")) {
    out.push(el("button", { type: "button", onclick: () => send("POSITION", "open") }, "Open"));
    out.push(el("button", { type: "button", onclick: () => send("POSITION", "close") }, "Close"));
    out.push(el("label", {}, "Position",
      el("input", { type: "range", min: 0, max: 100, "data-attr": "position", "aria-label": "position",
        onchange: (ev) => send("POSITION", "setPosition", { position: Number(ev.target.value) }) })));
  }
  return out;
}

let requestSeq = 0;
async function sendCommand(deviceId, capability, command, parameters) {
  const request_id = `ui-${Date.now()}-${requestSeq++}`;
  state.requests.set(request_id, deviceId);
  const frame = { type: "command", request_id, device_id: deviceId, capability, command, parameters };
  const ws = state.socket;
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(frame));
    return;
  }
  try {
    const res = await api(`/v1/homes/${encodeURIComponent(state.home)}/commands`, {
      method: "POST",
      body: { device_id: deviceId, capability, command, parameters },
    });
    handlers["command.status"]({ request_id, device_id: deviceId, command, status: res.status });
  } catch (err) {
    handlers["command.status"]({ request_id, device_id: deviceId, command, status: `failed: ${err.message}` });
  }
}

// ---- scenes, automations, notifications --------------------------------------------
const homePath = (suffix) => `/v1/homes/${encodeURIComponent(state.home)}/${suffix}`;
const listOf = (data, key) => (Array.isArray(data) ? data : data?.[key] || []);

async function loadScenes() {
  const box = $("#scenes");
  try {
    const scenes = listOf(await api(homePath("scenes")), "scenes");
    if (!scenes.length) return;
    box.replaceChildren(...scenes.map((s) => el("button", { type: "button", "data-scene": s.scene_id ?? s.id,
      onclick: () => runScene(s.scene_id ?? s.id) }, s.name ?? s.scene_id ?? s.id)));
  } catch (err) {
    box.replaceChildren(el("p", { class: "muted" }, `Scenes unavailable: ${err.message}`));
  }
}

function runScene(sceneId) {
  const ws = state.socket;
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ type: "scene.run", request_id: `ui-${Date.now()}`, scene_id: sceneId }));
  } else {
    api(homePath(`scenes/${encodeURIComponent(sceneId)}/run`), { method: "POST", body: {} }).catch(() => {});
  }
}

async function loadNotifications() {
  const list = $("#notifications");
  try {
    const items = listOf(await api(homePath("notifications")), "notifications");
    if (items.length) list.replaceChildren();
    for (const n of items.slice(0, 30).reverse()) addNotification(n);
  } catch (err) {
    list.replaceChildren(el("li", { class: "muted" }, `Notifications unavailable: ${err.message}`));
  }
}

function addNotification(n) {
  const list = $("#notifications");
  list.querySelector(".muted")?.remove();
  const when = n.ts ? new Date(n.ts).toLocaleTimeString() : "";
  const title = n.title && n.title !== n.message ? el("strong", {}, `${n.title}: `) : "";
  list.prepend(el("li", { class: `notification ${(n.kind || "").toLowerCase()}`, title: n.kind || "" },
    el("span", { class: "muted" }, `${when} `), title, n.message ?? n.kind ?? "notification"));
  while (list.children.length > 30) list.lastChild.remove();
}

// ---- logbook: what happened in the home (GET .../logbook), refreshed after live events
let logbookTimer = null;
function scheduleLogbook() {
  // The sinks write history a moment after the event: read once things settle, at most
  // every few seconds however busy the home is.
  if (logbookTimer) return;
  logbookTimer = setTimeout(() => { logbookTimer = null; loadLogbook(); }, 4000);
}

async function loadLogbook() {
  const list = $("#logbook");
  try {
    const data = await api(homePath("logbook?limit=40"));
    const entries = data.entries || [];
    if (!entries.length) {
      list.replaceChildren(el("li", { class: "muted" }, "Nothing happened in the last 24 h."));
      return;
    }
    list.replaceChildren(...entries.map((e) => el("li", { class: `logbook ${e.kind}`, title: e.time },
      el("span", { class: "muted" }, `${new Date(e.ts).toLocaleTimeString()} `), e.message)));
  } catch (err) {
    list.replaceChildren(el("li", { class: "muted" }, `Logbook unavailable: ${err.message}`));
  }
}
$("#logbook-refresh").addEventListener("click", () => loadLogbook());

// ---- history chart -----------------------------------------------------------------
async function openHistory(deviceId) {
  const d = state.devices.get(deviceId);
  const attrs = Object.entries(d?.reported || {})
    .filter(([, v]) => typeof v === "number" || v === "ON" || v === "OFF")
    .map(([k]) => k);
  const select = $("#history-attribute");
  select.replaceChildren(...attrs.map((a) => el("option", { value: a }, a)));
  $("#history-title").textContent = `History: ${d?.name ?? deviceId}`;
  select.onchange = () => drawHistory(deviceId);
  $("#history-range").onchange = () => drawHistory(deviceId);
  $("#history-dialog").showModal();
  await drawHistory(deviceId);
}

async function drawHistory(deviceId) {
  const attr = $("#history-attribute").value;
  const hours = Number($("#history-range").value);
  const to = new Date();
  const from = new Date(to.getTime() - hours * 3600 * 1000);
  const bucket = hours <= 1 ? "raw" : hours <= 24 ? "1m" : "1h";
  const svg = $("#history-chart");
  const note = $("#history-note");
  svg.replaceChildren();
  note.textContent = "";
  if (!attr) {
    note.textContent = "This device has no numeric or on/off attribute to chart.";
    return;
  }
  try {
    const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), bucket, attribute: attr });
    const data = await api(homePath(`devices/${encodeURIComponent(deviceId)}/history?${q}`));
    const rows = listOf(data, "points").length ? listOf(data, "points") : listOf(data, "history");
    const points = rows
      .map((r) => [Date.parse(r.time ?? r.bucket ?? r.ts), valueOf(r)])
      .filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v));
    if (!points.length) {
      note.textContent = "No history in this range yet.";
      return;
    }
    chart(svg, points, from.getTime(), to.getTime());
    note.textContent = `${points.length} points, ${bucket} buckets`;
  } catch (err) {
    note.textContent = `History unavailable: ${err.message}`;
  }
}

function valueOf(r) {
  for (const k of ["value_num", "avg", "mean", "value"]) {
    const v = r[k];
    if (typeof v === "number") return v;
    if (v === "ON") return 1;
    if (v === "OFF") return 0;
  }
  return NaN;
}

function chart(svg, points, t0, t1) {
  const W = 600, H = 220, P = 30;
  const vs = points.map(([, v]) => v);
  let lo = Math.min(...vs), hi = Math.max(...vs);
  if (lo === hi) { lo -= 1; hi += 1; }
  const x = (t) => P + ((t - t0) / (t1 - t0)) * (W - 2 * P);
  const y = (v) => H - P - ((v - lo) / (hi - lo)) * (H - 2 * P);
  const ns = "http://www.w3.org/2000/svg";
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", points.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(""));
  svg.append(path);
  for (const [v, yy] of [[hi, P], [lo, H - P]]) {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 2);
    label.setAttribute("y", yy + 4);
    label.textContent = Number(v.toFixed(2));
    svg.append(label);
  }
}

// ---- colour helpers ----------------------------------------------------------------
function hsToHex(h, s) {
  const f = (n) => {
    const k = (n + h / 60) % 6;
    const v = 1 - (s / 100) * Math.max(0, Math.min(k, 4 - k, 1));
    return Math.round(v * 255).toString(16).padStart(2, "0");
  };
  return `#${f(5)}${f(3)}${f(1)}`;
}

function hexToHs(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  const max = Math.max(r, g, b), min = Math.min(r, g, b), c = max - min;
  let h = 0;
  if (c) h = max === r ? ((g - b) / c) % 6 : max === g ? (b - r) / c + 2 : (r - g) / c + 4;
  return { hue: Math.round(((h * 60) + 360) % 360), saturation: Math.round(max ? (c / max) * 100 : 0) };
}

// ---- voice ---------------------------------------------------------------------------
// Text, or speech: MediaRecorder records the microphone, the browser decodes what it
// recorded and renders it at 16 kHz mono (OfflineAudioContext), and it goes as a WAV to
// POST .../voice; one conversation (session_id) per page.
const voiceSession = (crypto.randomUUID && crypto.randomUUID()) || `ui-${Date.now()}`;

function showVoice(reply) {
  const heard = reply.transcript ? `“${reply.transcript}” → ` : "";
  $("#voice-reply").textContent = heard + reply.response;
  $("#voice-reply").classList.toggle("error", !reply.intent);
}

async function sendVoice(payload) {
  $("#voice-reply").textContent = "…";
  try {
    const query = `voice?session_id=${encodeURIComponent(voiceSession)}`;
    showVoice(await api(homePath(query), payload));
  } catch (err) {
    $("#voice-reply").textContent = err.message;
  }
}

$("#voice-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("#voice-text").value.trim();
  if (!text) return;
  sendVoice({ method: "POST", body: { text, session_id: voiceSession } });
  $("#voice-text").value = "";
});

function wavOf(buffer) {
  const samples = buffer.getChannelData(0);
  const out = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const put = (at, text) => [...text].forEach((c, i) => out.setUint8(at + i, c.charCodeAt(0)));
  put(0, "RIFF"); out.setUint32(4, 36 + samples.length * 2, true); put(8, "WAVE");
  put(12, "fmt "); out.setUint32(16, 16, true); out.setUint16(20, 1, true); out.setUint16(22, 1, true);
  out.setUint32(24, buffer.sampleRate, true); out.setUint32(28, buffer.sampleRate * 2, true);
  out.setUint16(32, 2, true); out.setUint16(34, 16, true);
  put(36, "data"); out.setUint32(40, samples.length * 2, true);
  samples.forEach((v, i) => out.setInt16(44 + i * 2, Math.max(-1, Math.min(1, v)) * 0x7fff, true));
  return new Blob([out], { type: "audio/wav" });
}

async function toWav(blob) {
  const decoded = await new AudioContext().decodeAudioData(await blob.arrayBuffer());
  const offline = new OfflineAudioContext(1, Math.ceil(decoded.duration * 16000), 16000);
  const source = offline.createBufferSource();
  source.buffer = decoded;
  source.connect(offline.destination);
  source.start();
  return wavOf(await offline.startRendering());
}

let recorder = null;
async function toggleMic() {
  const mic = $("#voice-mic");
  if (recorder) { recorder.stop(); return; }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = async () => {
      stream.getTracks().forEach((t) => t.stop());
      recorder = null;
      mic.classList.remove("recording");
      const wav = await toWav(new Blob(chunks, { type: chunks[0]?.type }));
      sendVoice({ method: "POST", text: wav, contentType: "audio/wav" });
    };
    recorder.start();
    mic.classList.add("recording");
    $("#voice-reply").textContent = "Listening… click again to stop.";
  } catch (err) {
    $("#voice-reply").textContent = `The microphone is unavailable: ${err.message}`;
  }
}
$("#voice-mic").addEventListener("click", toggleMic);

// ---- go ------------------------------------------------------------------------------
setInterval(() => {
  const ws = state.socket;
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ping" }));
}, 25000);

// ---- offline: the service worker (/sw.js) keeps the shell; the page says so -------------
async function checkOnline() {
  let up = navigator.onLine;
  if (up) {
    try {
      up = (await fetch("/healthz", { cache: "no-store" })).ok;
    } catch {
      up = false;
    }
  }
  $("#offline").hidden = up;
  if (up && state.token && !state.started) {
    start().catch(() => signOut());
  }
  return up;
}
window.addEventListener("online", checkOnline);
window.addEventListener("offline", checkOnline);
setInterval(() => { if (!$("#offline").hidden) checkOnline(); }, 15000);
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
checkOnline();
