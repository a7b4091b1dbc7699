// Sluice results browser. Every string that came from a sample or a service reaches the page
// through el()/text nodes (textContent), never through an HTML parser: a hostile sample's strings
// are shown, not run. The server's Content-Security-Policy forbids inline script as a second guard.

import { sectionBody } from "/static/sections.js";

const view = document.getElementById("view");
const notice = document.getElementById("notice");
const VERDICTS = ["malicious", "highly_suspicious", "suspicious", "info", "safe"];

// -- DOM helpers --------------------------------------------------------------------------------

// el("td", {class: "num"}, "text", child): attributes by setAttribute, children as nodes or text.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...children) {
  view.replaceChildren();
  append(view, children);
}

function say(message, isError = false) {
  notice.textContent = message;
  notice.className = isError ? "notice error" : "notice";
  notice.hidden = false;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { notice.hidden = true; }, isError ? 12000 : 5000);
}

const verdictOf = (score) =>
  score >= 1000 ? "malicious" : score >= 700 ? "highly_suspicious" : score >= 300 ? "suspicious" : score >= 0 ? "info" : "safe";
const verdictBadge = (verdict, big = false) =>
  el("span", { class: `verdict ${verdict}${big ? " big" : ""}`, "data-verdict": verdict }, verdict.replace("_", " "));
const scoreText = (score) => el("span", { class: `score s-${verdictOf(score)}` }, String(score));
const when = (epoch) => (epoch ? new Date(epoch * 1000).toLocaleString() : "");
const ago = (epoch) => {
  if (!epoch) return "never";
  const s = Math.max(0, Date.now() / 1000 - epoch);
  return s < 90 ? `${Math.round(s)} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : when(epoch);
};
const bytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);

async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (response.ok) return response.status === 204 ? null : response.json();
  let detail = response.statusText;
  try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
  const error = new Error(detail);
  error.status = response.status;
  throw error;
}

// -- the submission list ------------------------------------------------------------------------

const filters = { verdict: "", min_score: "", file_type: "", tag: "" };

function listView() {
  const table = el("table", { class: "list", id: "submissions" },
    el("thead", {}, el("tr", {},
      el("th", {}, "completed"), el("th", {}, "verdict"), el("th", { class: "num" }, "score"), el("th", {}, "name"),
      el("th", {}, "type"), el("th", { class: "num" }, "files"), el("th", { class: "num" }, "errors"))),
    el("tbody"));
  const input = (key, placeholder, cls) => el("input", {
    value: filters[key], placeholder, class: cls, "aria-label": placeholder,
    oninput: (e) => { filters[key] = e.target.value.trim(); refreshList(); },
  });
  const verdict = el("select", { "aria-label": "verdict", onchange: (e) => { filters.verdict = e.target.value; refreshList(); } },
    el("option", { value: "" }, "any verdict"), VERDICTS.map((v) => el("option", { value: v, selected: filters.verdict === v }, v.replace("_", " "))));
  show(
    el("h1", {}, "Submissions"),
    el("div", { class: "filters" }, verdict, input("min_score", "min score", "narrow"), input("file_type", "file type, e.g. executable"),
      input("tag", "tag value contains"), el("span", { id: "count", class: "muted" })),
    table,
    el("p", { class: "muted" }, "Drop files anywhere on the page to submit them."),
  );
  refreshList();
}

let listRequest = 0;
async function refreshList(fresh = new Set()) {
  const body = document.querySelector("#submissions tbody");
  if (!body) return;
  const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v !== ""));
  const mine = ++listRequest;
  let data;
  try {
    data = await api(`/api/submissions?${query}`);
  } catch (error) {
    if (mine === listRequest) say(`Could not load submissions: ${error.message}`, true);
    return;
  }
  if (mine !== listRequest) return; // a newer filter already asked
  body.replaceChildren(...data.items.map((row) => el("tr", {
    "data-sid": row.sid, class: fresh.has(row.sid) ? "fresh" : null, onclick: () => { location.hash = `#/s/${row.sid}`; },
  },
    el("td", { class: "muted" }, when(row.completed_at)), el("td", {}, verdictBadge(row.verdict)), el("td", { class: "num" }, scoreText(row.score)),
    el("td", {}, el("a", { href: `#/s/${encodeURIComponent(row.sid)}` }, row.name || row.sid)), el("td", { class: "node-type" }, row.type),
    el("td", { class: "num" }, String(row.file_count)), el("td", { class: "num" }, row.errors ? el("span", { class: "error-type" }, String(row.errors)) : "0"))));
  if (!data.items.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "empty" }, "No completed submissions match.")));
  document.getElementById("count").textContent = `${data.matched} of ${data.indexed} recent`;
}

// Many submissions finishing at once cause one list request per LIST_THROTTLE ms, not one each.
const LIST_THROTTLE = 400;
let refreshTimer = null;
let freshSids = [];
function refreshSoon(sid) {
  freshSids.push(sid);
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    const fresh = new Set(freshSids);
    refreshTimer = null;
    freshSids = [];
    refreshList(fresh);
  }, LIST_THROTTLE);
}

// -- one submission -----------------------------------------------------------------------------

let waitingFor = null; // the sid whose verdict the page waits for

async function submissionView(sid) {
  waitingFor = null;
  let summary;
  try {
    summary = await api(`/api/submissions/${encodeURIComponent(sid)}`);
  } catch (error) {
    if (error.status !== 404) return show(el("div", { class: "errors" }, `Could not load ${sid}: ${error.message}`));
    waitingFor = sid;
    return show(el("div", { class: "panel", id: "pending" }, el("span", { class: "spinner" }), " Analysing ",
      el("span", { class: "mono" }, sid), " — the verdict appears here when it is ready."));
  }
  if (location.hash === `#/s/${sid}`) renderSummary(summary);
}

// The heuristics that fired (with their score and how often) and each tag's score: the highest
// heuristic score among the sections that carry it, so the worst indicators sort first.
function scoring(summary) {
  const heuristics = new Map();
  const tagScores = new Map();
  walk(summary.files, (node) => (node.results || []).forEach((result) => (result.sections || []).forEach((s) => {
    const score = s.heuristic?.score ?? 0;
    if (s.heuristic) {
      const key = `${result.service}.${s.heuristic.heur_id}`;
      const seen = heuristics.get(key) || { name: s.heuristic.name, score, hits: 0 };
      seen.hits += 1;
      heuristics.set(key, seen);
    }
    (s.tags || []).forEach((t) => {
      const key = `${t.name}\u0000${t.value}`;
      tagScores.set(key, Math.max(tagScores.get(key) ?? 0, score));
    });
  })));
  const tags = Object.entries(summary.tags || {}).flatMap(([name, values]) =>
    values.map((value) => ({ name, value, score: tagScores.get(`${name}\u0000${value}`) ?? 0 })));
  return {
    heuristics: [...heuristics.values()].sort((a, b) => b.score - a.score),
    tags: tags.sort((a, b) => b.score - a.score),
  };
}

const scoreChip = (score) => (score ? el("span", { class: `score s-${verdictOf(score)}` }, `+${score}`) : null);

function renderSummary(summary) {
  const first = summary.files[0] || {};
  const nodeErrors = [];
  walk(summary.files, (node) => node.errors?.forEach((error) => nodeErrors.push([node, error])));
  const { heuristics, tags } = scoring(summary);
  show(
    el("div", { class: "panel" },
      el("div", { class: "head" }, verdictBadge(summary.verdict, true), el("span", { class: "title" }, first.name || summary.sid),
        el("span", {}, "score ", scoreText(summary.score))),
      el("div", { class: "facts" }, el("span", { class: "mono" }, summary.sid), el("span", {}, first.type || ""),
        el("span", {}, `${summary.file_count ?? 0} file${summary.file_count === 1 ? "" : "s"}`),
        el("span", {}, `${summary.cached_results || 0} cached results`), el("span", {}, `completed ${when(summary.completed_at)}`)),
      nodeErrors.length ? el("div", { class: "errors", id: "errors" }, el("strong", {}, `${nodeErrors.length} error${nodeErrors.length === 1 ? "" : "s"}`),
        el("ul", {}, nodeErrors.map(([node, error]) => el("li", {}, el("span", { class: "error-type" }, `${error.service} · ${error.type}`),
          ` on ${node.name || node.sha256}: `, error.message)))) : null,
      heuristics.length ? [el("h2", {}, "Heuristics"), el("div", { class: "chips", id: "heuristics" },
        heuristics.map((h) => el("span", { class: "chip" }, scoreChip(h.score), h.name, h.hits > 1 ? el("span", { class: "k" }, `×${h.hits}`) : null)))] : null,
      tags.length ? [el("h2", {}, "Tags"), el("div", { class: "chips", id: "tags" },
        tags.map((t) => el("span", { class: "chip" }, scoreChip(t.score), el("span", { class: "k" }, t.name), el("span", { class: "v" }, t.value))))] : null),
    el("h2", {}, "Files ", el("button", { class: "small", onclick: () => foldTree(true) }, "expand all"),
      el("button", { class: "small", onclick: () => foldTree(false) }, "collapse all")),
    el("div", { class: "tree", id: "tree" }, summary.files.map((node) => fileNode(summary.sid, node))),
  );
}

function foldTree(open) {
  document.querySelectorAll("#tree details.node").forEach((node) => { node.open = open; });
}

function walk(nodes, visit) {
  for (const node of nodes) {
    visit(node);
    walk(node.children || [], visit);
  }
}

function fileNode(sid, node) {
  const score = node.score ?? 0; // the summary leaves out fields at their defaults
  const open = node.depth === 0 || score >= 300;
  const flags = [
    node.dropped && ["dropped", "a FILTER or EXTRACT service stopped later stages on this file"],
    node.duplicate && ["duplicate", "the same file is analysed elsewhere in this tree"],
  ].filter(Boolean);
  return el("details", { class: "node", open, "data-sha256": node.sha256 },
    el("summary", {}, scoreText(score), el("span", { class: "node-name" }, node.name || node.sha256),
      el("span", { class: "node-type" }, node.type), node.relation ? el("span", { class: "relation" }, node.relation) : null,
      el("span", { class: "muted" }, bytes(node.size)), flags.map(([flag, why]) => el("span", { class: "flag", title: why }, flag)),
      node.errors?.length ? el("span", { class: "error-type" }, `${node.errors.length} error${node.errors.length === 1 ? "" : "s"}`) : null),
    el("div", { class: "node-body" },
      el("div", { class: "downloads" }, el("span", { class: "mono muted" }, node.sha256),
        el("a", { href: `/api/submissions/${sid}/files/${encodeURIComponent(node.sha256)}`, download: "" }, "download file")),
      node.errors?.length ? el("div", { class: "errors" }, el("ul", {}, node.errors.map((e) =>
        el("li", {}, el("span", { class: "error-type" }, `${e.service} · ${e.type}`), ": ", e.message)))) : null,
      (node.results || []).map((result) => resultCard(sid, result)),
      (node.children || []).map((child) => fileNode(sid, child))));
}

function resultCard(sid, result) {
  return el("div", { class: "result", "data-service": result.service },
    el("div", { class: "rhead" }, el("span", { class: "service" }, result.service), scoreText(result.score),
      result.cached ? el("span", { class: "muted" }, "cached") : null),
    (result.sections || []).map((s) => section(s, (name) => `/api/submissions/${sid}/object?${new URLSearchParams({ name })}`)),
    result.objects?.length ? el("div", { class: "section downloads" }, result.objects.map((obj) =>
      el("a", { href: `/api/submissions/${sid}/object?${new URLSearchParams({ name: obj.name })}`, download: "", title: obj.description || obj.kind },
        `${obj.kind}: ${obj.name}`))) : null);
}

function section(s, objectUrl) {
  const tags = (s.tags || []).map((t) => el("span", { class: "chip" }, el("span", { class: "k" }, t.name), el("span", { class: "v" }, t.value)));
  return el("div", { class: `section d${Math.min(s.depth || 0, 4)}`, "data-format": s.body_format || "TEXT" },
    el("div", { class: "stitle" }, s.title,
      s.heuristic ? el("span", { class: `heur s-${verdictOf(s.heuristic.score)} score` }, `${s.heuristic.name} +${s.heuristic.score}`) : null),
    s.body ? el("div", { class: "sbody" }, sectionBody(s, el, objectUrl)) : null,
    tags.length ? el("div", { class: "chips sbody" }, tags) : null);
}

// -- services -----------------------------------------------------------------------------------

let servicesTimer = null;
async function servicesView() {
  let services;
  try {
    services = await api("/api/services");
  } catch (error) {
    return show(el("div", { class: "errors" }, `Could not load services: ${error.message}`));
  }
  if (location.hash !== "#/services") return;
  show(el("h1", {}, "Services"),
    el("table", { id: "services" }, el("thead", {}, el("tr", {}, el("th", {}, "service"), el("th", {}, "stage"), el("th", {}, "version"),
      el("th", { class: "num" }, "instances"), el("th", { class: "num" }, "queued"), el("th", { class: "num" }, "in flight"),
      el("th", {}, "last heartbeat"), el("th", {}, "recent failures"))),
    el("tbody", {}, services.map((s) => el("tr", { "data-service": s.name },
      el("td", {}, el("span", { class: `dot${s.alive ? " alive" : ""}`, title: s.alive ? "alive" : "down" }), s.name),
      el("td", {}, s.stage), el("td", {}, s.version), el("td", { class: "num" }, String(s.instances)),
      el("td", { class: "num" }, String(s.queued)), el("td", { class: "num" }, String(s.in_flight)), el("td", { class: "muted", title: when(s.last_seen) }, ago(s.last_seen)),
      el("td", {}, s.failures.length ? el("details", {}, el("summary", {}, `${s.failures.length} recent`),
        el("ul", {}, s.failures.map((f) => el("li", {}, el("a", { href: `#/s/${encodeURIComponent(f.sid)}` }, f.file), ` ${f.type}: `, f.message)))) : "none"))))),
    services.length ? null : el("p", { class: "empty" }, "No services have registered."));
  servicesTimer = setTimeout(() => { if (location.hash === "#/services") servicesView(); }, 3000);
}

// -- submitting ---------------------------------------------------------------------------------

let limits = null; // the gateway's, asked once: a file over the upload limit is refused before it is sent
async function submitFiles(files) {
  const sids = [];
  limits = limits || await api("/api/limits").catch(() => ({ max_upload: Infinity }));
  for (const file of files) {
    if (file.size > limits.max_upload) {
      say(`${file.name}: ${bytes(file.size)} is over the ${bytes(limits.max_upload)} upload limit`, true);
      continue;
    }
    try {
      const done = await api(`/api/submissions?${new URLSearchParams({ name: file.name || "upload" })}`, {
        method: "POST", headers: { "Content-Type": "application/octet-stream" }, body: file,
      });
      sids.push(done.sid);
    } catch (error) {
      say(`${file.name}: ${error.message}`, true);
    }
  }
  if (sids.length === 1) location.hash = `#/s/${sids[0]}`;
  else if (sids.length) say(`Submitted ${sids.length} files; they appear in the list as they finish.`);
}

document.getElementById("file-input").addEventListener("change", (e) => { submitFiles([...e.target.files]); e.target.value = ""; });

document.getElementById("sample-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const value = document.getElementById("sample-value").value.trim();
  try {
    const done = await api("/api/samples", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ kind: document.getElementById("sample-kind").value, value }) });
    location.hash = `#/s/${done.sid}`;
  } catch (error) {
    say(`${value}: ${error.message}`, true);
  }
});

const drop = document.getElementById("drop");
let dragDepth = 0;
document.addEventListener("dragenter", (e) => { if (e.dataTransfer?.types.includes("Files")) { dragDepth++; drop.hidden = false; } });
document.addEventListener("dragleave", () => { if (--dragDepth <= 0) { dragDepth = 0; drop.hidden = true; } });
document.addEventListener("dragover", (e) => e.preventDefault());
document.addEventListener("drop", (e) => {
  e.preventDefault();
  dragDepth = 0;
  drop.hidden = true;
  if (e.dataTransfer?.files.length) submitFiles([...e.dataTransfer.files]);
});

// -- live updates and routing -------------------------------------------------------------------

function connect() {
  const live = document.getElementById("live");
  const events = new EventSource("/api/stream");
  events.addEventListener("hello", () => {
    live.textContent = "live";
    live.className = "live on";
    refreshList(); // anything that finished while we were not listening
    if (waitingFor) submissionView(waitingFor);
  });
  events.addEventListener("submission", (e) => {
    const row = JSON.parse(e.data);
    refreshSoon(row.sid);
    if (row.sid === waitingFor && location.hash === `#/s/${row.sid}`) submissionView(row.sid);
  });
  events.onerror = () => { live.textContent = "reconnecting…"; live.className = "live"; };
}

function route() {
  clearTimeout(servicesTimer);
  const hash = location.hash || "#/";
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("current",
    (a.dataset.nav === "services") === (hash === "#/services")));
  const match = hash.match(/^#\/s\/([A-Za-z0-9_-]{1,64})$/);
  if (match) submissionView(match[1]);
  else if (hash === "#/services") servicesView();
  else listView();
}

window.addEventListener("hashchange", route);
route();
connect();
