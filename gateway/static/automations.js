// Automations in the dashboard: the list (on/off, edit, runs), the editor (a form for
// the common case, or the whole document as JSON or YAML), run traces (REST, then live
// `automation.run` frames) and the home's mode switch. Plain JS on app.js's helpers
// (api, el, homePath, listOf, state).
"use strict";

// What the form offers per capability: attributes a trigger or condition can watch (with
// their values, when they have few) and commands with their parameters. A subset of the
// capability table (docs/capabilities.md); anything else is written as JSON/YAML.
const CAPS = {
  ON_OFF: { attrs: { powerState: ["ON", "OFF"] }, commands: { turnOn: [], turnOff: [], toggle: [] } },
  BRIGHTNESS: { attrs: { brightness: null }, commands: { setBrightness: ["brightness"] } },
  COLOR_CONTROL: { attrs: {}, commands: { setColor: ["hue", "saturation"], setColorTemperature: ["kelvin"] } },
  THERMOSTAT: { attrs: { targetTemperature: null, mode: ["heat", "cool", "auto", "off"] },
    commands: { setTemperature: ["temperature"], setMode: ["mode"] } },
  LOCK: { attrs: { lockState: ["LOCKED", "UNLOCKED"] }, commands: { lock: [], unlock: [] } },
  POSITION: { attrs: { position: null }, commands: { open: [], close: [], setPosition: ["position"] } },
  MOTION_SENSOR: { attrs: { motion: [true, false] }, commands: {} },
  CONTACT_SENSOR: { attrs: { contact: ["open", "closed"] }, commands: {} },
  TEMPERATURE_SENSOR: { attrs: { temperature: null }, commands: {} },
  HUMIDITY_SENSOR: { attrs: { humidity: null }, commands: {} },
  ILLUMINANCE_SENSOR: { attrs: { illuminance: null }, commands: {} },
  BATTERY: { attrs: { battery: null }, commands: {} },
};
const TRIGGER_KINDS = ["state", "numeric_state", "time", "time_pattern", "sun", "event"];
const CONDITION_KINDS = ["mode", "state", "time"];
const ACTION_KINDS = ["command", "notify", "delay", "scene"];
const HOME_MODES = ["home", "away", "night"];

const auto = {
  items: new Map(), // automation_id -> stored document
  editing: null, // the id being edited (null: a new one)
  original: {}, // fields of the edited document the form does not show (kept on save)
  runsOf: null, // the automation whose runs are open
};

// ---- the home's mode -----------------------------------------------------------------
async function loadMode() {
  const select = $("#mode-select");
  try {
    select.value = (await api(homePath("mode"))).mode;
    select.dataset.mode = select.value;
  } catch (err) {
    select.title = `Mode unavailable: ${err.message}`;
  }
}

$("#mode-select").addEventListener("change", async (ev) => {
  const select = ev.target;
  try {
    const res = await api(homePath("mode"), { method: "PUT", body: { mode: select.value } });
    select.dataset.mode = res.mode;
    select.title = `mode: ${res.mode}`;
  } catch (err) {
    select.value = select.dataset.mode || "home";
    alert(`The mode was not changed: ${err.message}`);
  }
});

// ---- the list ------------------------------------------------------------------------
const stripStored = ({ automation_id, updated_at, ...doc }) => doc;

async function loadAutomations() {
  const list = $("#automations");
  try {
    const items = listOf(await api(homePath("automations")), "automations");
    auto.items = new Map(items.map((a) => [a.automation_id, a]));
    renderAutomations();
    for (const id of auto.items.keys()) lastRun(id);
  } catch (err) {
    list.replaceChildren(el("li", { class: "muted" }, `Automations unavailable: ${err.message}`));
  }
}

function renderAutomations() {
  const list = $("#automations");
  if (!auto.items.size) {
    list.replaceChildren(el("li", { class: "muted" }, "No automations yet."));
    return;
  }
  list.replaceChildren(...[...auto.items.values()].map((a) => {
    const id = a.automation_id;
    const box = el("input", { type: "checkbox", "aria-label": `enable ${a.alias ?? id}` });
    box.checked = a.enabled !== false;
    box.addEventListener("change", async () => {
      try {
        const saved = await api(homePath(`automations/${encodeURIComponent(id)}`),
          { method: "PUT", body: { ...stripStored(a), enabled: box.checked } });
        auto.items.set(id, saved);
      } catch (err) {
        box.checked = !box.checked;
        alert(err.message);
      }
    });
    return el("li", { class: "automation", "data-automation": id },
      el("div", { class: "switch" }, el("span", { class: "alias" }, a.alias ?? id), box),
      el("div", { class: "meta" },
        el("span", { class: "last-run muted" }),
        el("span", {},
          el("button", { type: "button", class: "small", onclick: () => openEditor(id) }, "Edit"),
          el("button", { type: "button", class: "small", onclick: () => openRuns(id) }, "Runs"))));
  }));
}

// The latest run of each automation under its name (then live frames keep it current).
async function lastRun(id) {
  try {
    const [run] = listOf(await api(homePath(`automations/${encodeURIComponent(id)}/runs?limit=1`)), "runs");
    if (run) onAutomationRun({ ...run, automation_id: id }, false);
  } catch {
    // no runs to show: the list works without them
  }
}

function onAutomationRun(run, live = true) {
  const item = document.querySelector(`[data-automation="${CSS.escape(run.automation_id || "")}"] .last-run`);
  if (item) item.textContent = `${run.status.toLowerCase()} ${run.ts ? new Date(run.ts).toLocaleTimeString() : ""}`;
  if (live && auto.runsOf === run.automation_id) showRun(run);
}

// ---- run traces ----------------------------------------------------------------------
async function openRuns(id) {
  auto.runsOf = id;
  $("#runs-title").textContent = `Runs: ${auto.items.get(id)?.alias ?? id}`;
  const list = $("#runs-list");
  list.replaceChildren(el("li", { class: "muted" }, "Loading..."));
  $("#runs-dialog").showModal();
  try {
    const runs = listOf(await api(homePath(`automations/${encodeURIComponent(id)}/runs`)), "runs");
    list.replaceChildren();
    if (!runs.length) list.append(el("li", { class: "muted empty" }, "No runs yet: they appear here as they happen."));
    for (const run of runs.reverse()) showRun(run); // oldest first, each on top
  } catch (err) {
    list.replaceChildren(el("li", { class: "muted" }, `Runs unavailable: ${err.message}`));
  }
}

$("#runs-dialog").addEventListener("close", () => { auto.runsOf = null; });

function showRun(run) {
  const list = $("#runs-list");
  list.querySelector(".empty")?.remove();
  const item = el("li", { class: `run ${String(run.status).toLowerCase()}`, "data-run": run.run_id },
    el("div", { class: "switch" },
      el("strong", { class: "status" }, run.status),
      el("span", { class: "muted" }, run.ts ? new Date(run.ts).toLocaleString() : "")),
    el("div", { class: "muted" }, describeTrigger(run.trigger)),
    traceView(run));
  const old = list.querySelector(`[data-run="${CSS.escape(run.run_id || "")}"]`);
  if (old) old.replaceWith(item);
  else list.prepend(item);
}

function describeTrigger(t) {
  if (!t || typeof t !== "object") return "";
  const what = t.platform ?? t.trigger ?? "trigger";
  if (t.device_id && t.attribute) return `${what}: ${t.device_id} ${t.attribute} ${JSON.stringify(t.from)} → ${JSON.stringify(t.to)}`;
  if (t.event) return `${what}: ${t.device_id ?? ""} ${t.event}`;
  return `${what} (${t.path ?? ""})`;
}

// The trace: each condition and action with its result, where it stopped, any error.
function traceView(run) {
  const trace = run.trace && typeof run.trace === "object" ? run.trace : {};
  const lines = [];
  for (const c of trace.conditions || []) {
    lines.push(`${c.path}  ${c.condition}: ${c.result ? "holds" : "does not hold"}${c.mode ? ` (mode ${c.mode})` : ""}${c.message ? ` — ${c.message}` : ""}`);
  }
  for (const a of trace.actions || []) {
    const who = a.alias ? ` "${a.alias}"` : "";
    lines.push(`${a.path}  ${a.action}${who}: ${a.result ?? "running"}${a.error ? ` — ${a.error}` : ""}`);
  }
  for (const w of trace.warnings || []) lines.push(`warning: ${w.message ?? JSON.stringify(w)}`);
  if (trace.stopped) lines.push(`stopped: ${trace.stopped}`);
  if (run.error) lines.push(`error: ${run.error}`);
  // A run reports when it starts and when it ends; the trace comes with the end.
  const empty = run.status === "STARTED" ? "(running: its trace comes when it ends)" : "(empty)";
  return el("details", { class: "trace" }, el("summary", {}, "Trace"),
    el("pre", {}, lines.join("\n") || empty));
}

// ---- the editor ----------------------------------------------------------------------
$("#new-automation").addEventListener("click", () => openEditor(null));

function openEditor(id) {
  auto.editing = id;
  const doc = id ? stripStored(auto.items.get(id) || {}) : {
    alias: "", mode: "single", triggers: [{ trigger: "state" }], conditions: [], actions: [{ action: "notify", message: "" }],
  };
  $("#editor-title").textContent = id ? `Edit: ${doc.alias || id}` : "New automation";
  $("#auto-id").value = id ?? "";
  $("#auto-id").readOnly = Boolean(id);
  $("#auto-delete").hidden = !id;
  clearErrors();
  $("#editor-note").textContent = "";
  const fits = fillForm(doc);
  $("#auto-raw").value = JSON.stringify(doc, null, 2);
  $("#auto-format").value = "json";
  showTab(fits ? "form" : "raw");
  if (!fits) $("#editor-note").textContent = "This automation uses more than the form shows: edit it as JSON or YAML.";
  $("#automation-dialog").showModal();
}

function showTab(name) {
  $("#automation-form").hidden = name !== "form";
  $("#automation-raw").hidden = name !== "raw";
  $("#auto-tab-form").classList.toggle("active", name === "form");
  $("#auto-tab-raw").classList.toggle("active", name === "raw");
}

$("#auto-tab-raw").addEventListener("click", () => {
  if (!$("#automation-form").hidden) {
    $("#auto-raw").value = JSON.stringify(formDoc(), null, 2);
    $("#auto-format").value = "json";
  }
  showTab("raw");
});

$("#auto-tab-form").addEventListener("click", () => {
  if ($("#automation-form").hidden) {
    if ($("#auto-format").value !== "json") {
      $("#editor-note").textContent = "The form reads JSON: save the YAML as it is, or write it as JSON.";
      return;
    }
    let doc;
    try {
      doc = JSON.parse($("#auto-raw").value);
    } catch (err) {
      $("#editor-note").textContent = `Not JSON: ${err.message}`;
      return;
    }
    if (!fillForm(doc)) {
      $("#editor-note").textContent = "This automation uses more than the form shows: edit it as JSON or YAML.";
      return;
    }
  }
  $("#editor-note").textContent = "";
  showTab("form");
});

$("#automation-dialog").addEventListener("close", () => { auto.editing = null; });
$("#auto-cancel").addEventListener("click", () => $("#automation-dialog").close());

$("#auto-delete").addEventListener("click", async () => {
  const id = auto.editing;
  if (!id || !confirm(`Delete the automation "${id}"?`)) return;
  try {
    await api(homePath(`automations/${encodeURIComponent(id)}`), { method: "DELETE" });
    auto.items.delete(id);
    renderAutomations();
    $("#automation-dialog").close();
  } catch (err) {
    showErrors(err);
  }
});

$("#auto-save").addEventListener("click", async () => {
  clearErrors();
  const id = $("#auto-id").value.trim();
  if (!id) {
    showErrors({ message: "give the automation an id", details: [{ path: "(id)", message: "is required" }] });
    return;
  }
  const path = homePath(`automations/${encodeURIComponent(id)}`);
  try {
    let saved;
    if (!$("#automation-raw").hidden) {
      const yaml = $("#auto-format").value === "yaml";
      saved = await api(path, { method: "PUT", text: $("#auto-raw").value,
        contentType: yaml ? "application/yaml" : "application/json" });
    } else {
      saved = await api(path, { method: "PUT", body: formDoc() });
    }
    auto.items.set(id, saved);
    renderAutomations();
    $("#automation-dialog").close();
  } catch (err) {
    showErrors(err);
  }
});

// ---- 422s inline ---------------------------------------------------------------------
function clearErrors() {
  $("#editor-errors").replaceChildren();
  for (const node of document.querySelectorAll("#automation-dialog .invalid")) node.classList.remove("invalid");
  for (const node of document.querySelectorAll("#automation-dialog .field-error")) node.remove();
}

// Each problem in the list above the editor (path, message, line for YAML), and on the
// form field it names: the element whose data-path is the longest prefix of its path.
function showErrors(err) {
  const details = err.details?.length ? err.details : [{ path: "", message: err.message }];
  $("#editor-errors").replaceChildren(...details.map((d) => el("li", { class: "error", "data-error-path": d.path },
    el("code", {}, d.path || "document"), ": ", d.message,
    d.line ? ` (line ${d.line}${d.column ? `, column ${d.column}` : ""})` : "")));
  if ($("#automation-form").hidden) return;
  const fields = [...document.querySelectorAll("#automation-dialog [data-path]")]
    .filter((node) => node.dataset.path);
  for (const d of details) {
    const target = fields
      .filter((node) => covers(node.dataset.path, d.path || ""))
      .sort((a, b) => b.dataset.path.length - a.dataset.path.length)[0];
    if (!target) continue;
    target.classList.add("invalid");
    target.after(el("small", { class: "field-error" }, d.message));
  }
}

const covers = (prefix, path) => path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);

// ---- the form <-> the document ---------------------------------------------------------
// Values typed as text: true/false and numbers become JSON's; the rest stays text.
function typed(text) {
  const t = String(text).trim();
  if (t === "true" || t === "false") return t === "true";
  if (t !== "" && !Number.isNaN(Number(t))) return Number(t);
  return t;
}

function devicesWith(pred) {
  return [...state.devices.values()].filter(pred).sort((a, b) => (a.name || "").localeCompare(b.name || ""));
}

const capsOf = (deviceId) => state.devices.get(deviceId)?.capabilities || [];
const attrsOf = (deviceId) => Object.assign({}, ...capsOf(deviceId).map((c) => CAPS[c]?.attrs || {}));

function deviceSelect(path, value, pred = () => true) {
  const options = devicesWith(pred).map((d) => el("option", { value: d.device_id }, `${d.name || d.device_id} (${d.room || "?"})`));
  const select = el("select", { "data-path": path, "data-role": "device", "aria-label": "device" }, el("option", { value: "" }, "device..."), ...options);
  if (value && !state.devices.has(value)) select.append(el("option", { value }, value));
  select.value = value || "";
  return select;
}

function attributeSelect(path, deviceId, value) {
  const attrs = Object.keys(attrsOf(deviceId));
  if (value && !attrs.includes(value)) attrs.push(value);
  const select = el("select", { "data-path": path, "data-role": "attribute", "aria-label": "attribute" }, el("option", { value: "" }, "attribute..."),
    ...attrs.map((a) => el("option", { value: a }, a)));
  select.value = value || "";
  return select;
}

function input(path, role, value, placeholder = "") {
  const node = el("input", { "data-path": path, "data-role": role, placeholder, "aria-label": role });
  node.value = value === undefined || value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
  return node;
}

function choice(path, role, options, value) {
  const node = el("select", { "data-path": path, "data-role": role, "aria-label": role }, ...options.map((o) => el("option", { value: o }, o)));
  node.value = value ?? options[0];
  return node;
}

const field = (label, node) => el("label", { class: "inline" }, `${label} `, node);
const roleOf = (box, role) => box.querySelector(`[data-role="${role}"]`);
const fieldValue = (box, role) => roleOf(box, role)?.value.trim() ?? "";

function fillForm(doc) {
  const triggers = doc.triggers ?? doc.trigger ?? [];
  const listed = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
  const ts = listed(triggers);
  const cs = listed(doc.conditions ?? doc.condition);
  const as = listed(doc.actions ?? doc.action);
  const fits = ts.length === 1 && TRIGGER_KINDS.includes(ts[0].trigger ?? ts[0].platform)
    && cs.every((c) => CONDITION_KINDS.includes(c.condition))
    && as.every((a) => ACTION_KINDS.includes(actionKind(a)));
  if (!fits) return false;
  const { alias, mode, triggers: _t, trigger: _t1, conditions: _c, condition: _c1, actions: _a, action: _a1, ...rest } = doc;
  auto.original = rest; // description, enabled, max ...: kept as they are
  $("#auto-alias").value = alias ?? "";
  $("#auto-mode").value = mode ?? "single";
  renderTrigger(ts[0]);
  $("#auto-conditions").replaceChildren(...cs.map((c) => conditionRow(c)));
  $("#auto-actions").replaceChildren(...as.map((a) => actionRow(a)));
  renumber();
  return true;
}

function formDoc() {
  const doc = { ...auto.original, alias: $("#auto-alias").value.trim(), mode: $("#auto-mode").value,
    triggers: [triggerDoc()], conditions: [], actions: [] };
  for (const row of $("#auto-conditions").children) doc.conditions.push(conditionDoc(row));
  for (const row of $("#auto-actions").children) doc.actions.push(actionDoc(row));
  if (!doc.conditions.length) delete doc.conditions;
  return doc;
}

// -- the trigger
function renderTrigger(t) {
  const kind = t.trigger ?? t.platform ?? "state";
  $("#trigger-kind").value = kind;
  const p = "triggers[0]";
  const box = $("#trigger-fields");
  const parts = [];
  if (kind === "state" || kind === "numeric_state" || kind === "event") {
    const dev = deviceSelect(`${p}.device_id`, t.device_id);
    parts.push(field("Device", dev));
    if (kind !== "event") {
      const attr = attributeSelect(`${p}.attribute`, t.device_id, t.attribute);
      dev.addEventListener("change", () => attr.replaceWith(attributeSelect(`${p}.attribute`, dev.value, "")));
      parts.push(field("Attribute", attr));
    }
  }
  if (kind === "state") {
    parts.push(field("From", input(`${p}.from`, "from", t.from, "any")));
    parts.push(field("To", input(`${p}.to`, "to", t.to, "any")));
    parts.push(field("For", input(`${p}.for`, "for", t.for, "HH:MM:SS")));
  } else if (kind === "numeric_state") {
    parts.push(field("Above", input(`${p}.above`, "above", t.above)));
    parts.push(field("Below", input(`${p}.below`, "below", t.below)));
    parts.push(field("For", input(`${p}.for`, "for", t.for, "HH:MM:SS")));
  } else if (kind === "time") {
    parts.push(field("At", input(`${p}.at`, "at", t.at, "HH:MM")));
  } else if (kind === "time_pattern") {
    for (const unit of ["hours", "minutes", "seconds"]) parts.push(field(unit, input(`${p}.${unit}`, unit, t[unit], "* or /5")));
  } else if (kind === "sun") {
    parts.push(field("Event", choice(`${p}.event`, "event", ["sunrise", "sunset"], t.event)));
    parts.push(field("Offset", input(`${p}.offset`, "offset", t.offset, "-00:30:00")));
  } else if (kind === "event") {
    parts.push(field("Event", input(`${p}.event`, "event", t.event, "press")));
  }
  box.replaceChildren(...parts);
}

$("#trigger-kind").addEventListener("change", (ev) => renderTrigger({ trigger: ev.target.value }));

function triggerDoc() {
  const box = $("#trigger-fields");
  const t = { trigger: $("#trigger-kind").value };
  const put = (key, value) => { if (value !== "" && value !== undefined) t[key] = value; };
  put("device_id", fieldValue(box, "device"));
  put("attribute", fieldValue(box, "attribute"));
  for (const key of ["from", "to", "above", "below"]) if (roleOf(box, key)) put(key, fieldValue(box, key) === "" ? "" : typed(fieldValue(box, key)));
  for (const key of ["for", "at", "offset", "event", "hours", "minutes", "seconds"]) if (roleOf(box, key)) put(key, fieldValue(box, key));
  return t;
}

// -- conditions
function conditionRow(c) {
  const row = el("div", { class: "row" });
  const kind = choice("", "kind", CONDITION_KINDS, c.condition);
  kind.addEventListener("change", () => { row.replaceWith(conditionRow({ condition: kind.value })); renumber(); });
  const parts = [kind];
  if (kind.value === "mode") {
    parts.push(choice("", "mode", HOME_MODES, Array.isArray(c.mode) ? c.mode[0] : c.mode ?? "away"));
  } else if (kind.value === "state") {
    const dev = deviceSelect("", c.device_id);
    const attr = attributeSelect("", c.device_id, c.attribute);
    dev.addEventListener("change", () => { const fresh = attributeSelect(attr.dataset.path, dev.value, ""); attr.replaceWith(fresh); });
    parts.push(dev, attr, input("", "state", c.state, "value"));
  } else {
    parts.push(field("after", input("", "after", c.after, "HH:MM")), field("before", input("", "before", c.before, "HH:MM")));
  }
  parts.push(el("button", { type: "button", class: "small", onclick: () => { row.remove(); renumber(); } }, "Remove"));
  row.append(...parts);
  return row;
}

function conditionDoc(row) {
  const kind = fieldValue(row, "kind");
  if (kind === "mode") return { condition: "mode", mode: fieldValue(row, "mode") };
  if (kind === "state") {
    return { condition: "state", device_id: fieldValue(row, "device"), attribute: fieldValue(row, "attribute"), state: typed(fieldValue(row, "state")) };
  }
  const c = { condition: "time" };
  if (fieldValue(row, "after")) c.after = fieldValue(row, "after");
  if (fieldValue(row, "before")) c.before = fieldValue(row, "before");
  return c;
}

$("#add-condition").addEventListener("click", () => { $("#auto-conditions").append(conditionRow({ condition: "mode", mode: "away" })); renumber(); });

// -- actions
function actionKind(a) {
  if (a.action && ACTION_KINDS.includes(a.action)) return a.action;
  if (a.action) return a.action;
  if (a.device_id || a.group_id) return a.group_id ? "group" : "command";
  return ["notify", "delay", "scene"].find((k) => k in a) ?? "unknown";
}

function commandOptions(deviceId) {
  const out = [];
  for (const cap of capsOf(deviceId)) for (const cmd of Object.keys(CAPS[cap]?.commands || {})) out.push(`${cap}.${cmd}`);
  return out;
}

function actionRow(a) {
  const row = el("div", { class: "row" });
  const kind = choice("", "kind", ACTION_KINDS, actionKind(a));
  kind.addEventListener("change", () => { row.replaceWith(actionRow({ action: kind.value })); renumber(); });
  const parts = [kind];
  if (kind.value === "command") {
    const dev = deviceSelect("", a.device_id, (d) => commandOptions(d.device_id).length > 0);
    const current = a.capability && a.command ? `${a.capability}.${a.command}` : "";
    const todo = () => {
      const opts = commandOptions(dev.value);
      if (current && !opts.includes(current)) opts.push(current);
      const select = choice("", "command", opts.length ? opts : [""], opts.includes(current) ? current : opts[0]);
      select.addEventListener("change", () => params.replaceWith(params = paramInputs(select.value, {})));
      return select;
    };
    let command = todo();
    let params = paramInputs(command.value, a.parameters || {});
    dev.addEventListener("change", () => {
      const fresh = todo();
      command.replaceWith(fresh);
      command = fresh;
      const p = paramInputs(command.value, {});
      params.replaceWith(p);
      params = p;
    });
    parts.push(dev, command, params);
  } else if (kind.value === "notify") {
    const message = typeof a.notify === "string" ? a.notify : a.notify?.message ?? a.message;
    const title = a.notify?.title ?? a.title;
    if (title) row.dataset.title = title; // kept: the form shows the message only
    parts.push(input("", "message", message, "message"));
  } else if (kind.value === "delay") {
    parts.push(input("", "delay", a.delay, "HH:MM:SS"));
  } else {
    parts.push(input("", "scene", a.scene_id ?? a.scene, "scene id"));
  }
  parts.push(el("button", { type: "button", class: "small", onclick: () => { row.remove(); renumber(); } }, "Remove"));
  row.append(...parts);
  return row;
}

function paramInputs(capCommand, values) {
  const [cap, cmd] = String(capCommand).split(".");
  const names = CAPS[cap]?.commands?.[cmd] || [];
  return el("span", { class: "params", "data-role": "params" },
    ...names.map((n) => field(n, input("", `param-${n}`, values[n]))));
}

function actionDoc(row) {
  const kind = fieldValue(row, "kind");
  if (kind === "command") {
    const [capability, command] = fieldValue(row, "command").split(".");
    const doc = { device_id: fieldValue(row, "device"), capability, command };
    const parameters = {};
    for (const node of row.querySelectorAll('[data-role^="param-"]')) {
      if (node.value.trim() !== "") parameters[node.dataset.role.slice(6)] = typed(node.value);
    }
    if (Object.keys(parameters).length) doc.parameters = parameters;
    return doc;
  }
  if (kind === "notify") {
    const doc = { action: "notify", message: fieldValue(row, "message") };
    if (row.dataset.title) doc.title = row.dataset.title;
    return doc;
  }
  if (kind === "delay") return { delay: typed(fieldValue(row, "delay")) };
  return { scene_id: fieldValue(row, "scene") };
}

$("#add-action").addEventListener("click", () => { $("#auto-actions").append(actionRow({ action: "notify", message: "" })); renumber(); });

// Rows are indexed by position: give each row and its fields the path the API will name
// (conditions[1].mode, actions[0].device_id), so a 422 lands on them.
const ROLE_FIELDS = { device: "device_id", attribute: "attribute", state: "state", mode: "mode", after: "after",
  before: "before", command: "command", message: "message", delay: "delay", scene: "scene_id", params: "parameters" };

function renumber() {
  for (const [box, key] of [[$("#auto-conditions"), "conditions"], [$("#auto-actions"), "actions"]]) {
    [...box.children].forEach((row, i) => {
      row.dataset.path = `${key}[${i}]`;
      for (const node of row.querySelectorAll("[data-role]")) {
        const name = ROLE_FIELDS[node.dataset.role];
        if (name) node.dataset.path = `${key}[${i}].${name}`;
      }
    });
  }
}
