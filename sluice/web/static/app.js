import { VERDICTS, ago, api, append, bytes, el, may, say, scoreText, session, show, verdictBadge, verdictOf, walk, when } from "./dom.js";
import {
  alertsView, attackChip, auditView, downloadLinks, fileView, loadAttack, loadSession, loginView, resubmitPanel, signOut,
  techniqueSummary, triagePanel,
} from "./workspace.js";
import { sectionBody } from "./sections.js";

// Sluice results browser. Every string that came from a sample or a service reaches the page
// through el()/text nodes (textContent), never through an HTML parser: a hostile sample's strings
// are shown, not run. The server's Content-Security-Policy forbids inline script as a second guard.

// -- the submission list ------------------------------------------------------------------------

const PAGE = 50;
const search = { q: "", verdict: "", offset: 0 };

// The list is a search over the whole history; the query lives in the URL (#/?q=...), so a search
// (or a clicked tag) can be bookmarked and shared.
export function searchHref(q) {
  return `#/?${new URLSearchParams({ q })}`;
}

function listView(params) {
  search.q = params.get("q") || "";
  search.verdict = params.get("verdict") || "";
  search.offset = Number(params.get("offset")) || 0;
  const table = el("table", { class: "list", id: "submissions" },
    el("thead", {}, el("tr", {},
      el("th", {}, "completed"), el("th", {}, "verdict"), el("th", { class: "num" }, "score"), el("th", {}, "name"),
      el("th", {}, "type"), el("th", {}, "submitter"), el("th", { class: "num" }, "files"), el("th", { class: "num" }, "errors"))),
    el("tbody"));
  const box = el("input", { id: "search", type: "search", value: search.q, class: "search", "aria-label": "search",
    placeholder: "search: a hash, tag:network.static.domain=evil.example, name:, type:, score>=500, service:, attack:T1059, submitter:, words" });
  const verdict = el("select", { "aria-label": "verdict", id: "verdict-filter" },
    el("option", { value: "" }, "any verdict"), VERDICTS.map((v) => el("option", { value: v, selected: search.verdict === v }, v.replace("_", " "))));
  const go = (offset = 0) => {
    const query = new URLSearchParams({ q: box.value.trim() });
    if (verdict.value) query.set("verdict", verdict.value);
    if (offset) query.set("offset", offset);
    location.hash = `#/?${query}`;
  };
  show(
    el("h1", {}, "Submissions"),
    el("form", { class: "filters", id: "search-form", onsubmit: (e) => { e.preventDefault(); go(); } },
      box, verdict, el("button", { type: "submit", class: "primary" }, "Search"), el("span", { id: "count", class: "muted" })),
    table,
    el("div", { class: "pager" },
      el("button", { id: "newer", onclick: () => go(Math.max(0, search.offset - PAGE)) }, "← newer"),
      el("button", { id: "older", onclick: () => go(search.offset + PAGE) }, "older →")),
    el("p", { class: "muted" }, "Drop files anywhere on the page to submit them."),
  );
  verdict.addEventListener("change", () => go());
  refreshList();
}

let listRequest = 0;
async function refreshList(fresh = new Set()) {
  const body = document.querySelector("#submissions tbody");
  if (!body) return;
  const query = new URLSearchParams({ q: search.q, limit: PAGE, offset: search.offset });
  if (search.verdict) query.set("verdict", search.verdict);
  const mine = ++listRequest;
  let data;
  try {
    data = await api(`/api/submissions?${query}`);
  } catch (error) {
    if (mine === listRequest) say(`Search: ${error.message}`, true);
    return;
  }
  if (mine !== listRequest) return; // a newer search already asked
  body.replaceChildren(...data.items.map((row) => el("tr", {
    "data-sid": row.sid, class: fresh.has(row.sid) ? "fresh" : null, onclick: () => { location.hash = `#/s/${row.sid}`; },
  },
    el("td", { class: "muted" }, when(row.completed_at)), el("td", {}, verdictBadge(row.verdict)), el("td", { class: "num" }, scoreText(row.score)),
    el("td", {}, el("a", { href: `#/s/${encodeURIComponent(row.sid)}` }, row.name || row.sid)), el("td", { class: "node-type" }, row.type),
    el("td", { class: "muted" }, row.submitter || ""),
    el("td", { class: "num" }, String(row.file_count)), el("td", { class: "num" }, row.errors ? el("span", { class: "error-type" }, String(row.errors)) : "0"))));
  if (!data.items.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "empty" }, "No completed submissions match.")));
  const shown = data.items.length ? `${data.offset + 1}–${data.offset + data.items.length}` : "0";
  const matched = data.matched > 1000 ? "more than 1,000" : String(data.matched);
  document.getElementById("count").textContent = `${shown} of ${matched} matching · ${data.indexed} indexed`;
  document.getElementById("newer").disabled = data.offset === 0;
  document.getElementById("older").disabled = data.offset + data.items.length >= data.matched;
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

let viewRequest = 0; // only the newest look-up of a submission draws (an older answer may be staler)

async function submissionView(sid) {
  // Waiting from before the look-up: a verdict announced while it is in flight asks again.
  waitingFor = sid;
  const mine = ++viewRequest;
  let summary;
  try {
    summary = await api(`/api/submissions/${encodeURIComponent(sid)}`);
  } catch (error) {
    if (mine !== viewRequest) return;
    if (error.status !== 404) return show(el("div", { class: "errors" }, `Could not load ${sid}: ${error.message}`));
    // Unknown here; if it finishes after all (submitted elsewhere), it shows.
    return show(el("div", { class: "panel unknown", id: "pending" }, "No submission ", el("span", { class: "mono" }, sid),
      " is known: a wrong id, or one that expired from the history. If it was submitted over NATS and is being analysed, its verdict appears here when ready."));
  }
  if (mine !== viewRequest) return;
  if (summary.state === "analysing") { // 202: submitted through a web front (any), not finished yet
    return show(el("div", { class: "panel", id: "pending" }, el("span", { class: "spinner" }), " Analysing ",
      el("span", { class: "mono" }, sid), " — the verdict appears here when it is ready."));
  }
  waitingFor = null;
  await loadAttack();
  if (mine === viewRequest && location.hash === `#/s/${sid}`) renderSummary(summary);
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
      const seen = heuristics.get(key) || { name: s.heuristic.name, score, hits: 0, attack: s.heuristic.attack_ids || [] };
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

const ALERT_SCORE = 500; // the dispatcher's alert threshold (GET /api/alerts says it too)
// A value as one search token: quoted when it holds a space or a quote.
const quoted = (value) => (/[\s"']/.test(value) ? `"${value.replace(/"/g, "")}"` : value);

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
        heuristics.map((h) => el("span", { class: "chip" }, scoreChip(h.score), h.name, h.hits > 1 ? el("span", { class: "k" }, `×${h.hits}`) : null,
          h.attack.map(attackChip))))] : null,
      techniqueSummary(summary, walk),
      tags.length ? [el("h2", {}, "Tags ", el("span", { class: "muted" }, "(click one to find every submission with it)")), el("div", { class: "chips", id: "tags" },
        tags.map((t) => el("a", { class: "chip", href: searchHref(`tag:${t.name}=${quoted(t.value)}`), title: "other submissions with this tag" },
          scoreChip(t.score), el("span", { class: "k" }, t.name), el("span", { class: "v" }, t.value))))] : null,
      may("submitter") ? resubmitPanel(`/api/submissions/${summary.sid}/resubmit`) : null),
    summary.score >= ALERT_SCORE ? triagePanel(summary.sid) : null,
    el("h2", {}, "Files ", el("button", { class: "small", onclick: () => foldTree(true) }, "expand all"),
      el("button", { class: "small", onclick: () => foldTree(false) }, "collapse all")),
    el("div", { class: "tree", id: "tree" }, summary.files.map((node) => fileNode(summary.sid, node))),
  );
}

function foldTree(open) {
  document.querySelectorAll("#tree details.node").forEach((node) => { node.open = open; });
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
      el("div", { class: "downloads" }, el("a", { class: "mono", href: `#/f/${node.sha256}`, title: "the file's page: hex, strings, every submission it was in" }, node.sha256),
        downloadLinks(`/api/submissions/${sid}/files/${encodeURIComponent(node.sha256)}`)),
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
      el("span", { class: "object", title: obj.description || obj.kind }, `${obj.kind}: ${obj.name} `,
        downloadLinks(`/api/submissions/${sid}/object?${new URLSearchParams({ name: obj.name })}`)))) : null);
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
    if (location.hash === "#/alerts" && row.score >= ALERT_SCORE) alertsView();
  });
  events.addEventListener("triage", (e) => {
    const triage = JSON.parse(e.data);
    if (location.hash === "#/alerts") alertsView();
    if (location.hash === `#/s/${triage.sid}`) document.getElementById("triage")?.refresh?.();
  });
  events.onerror = () => { live.textContent = "reconnecting…"; live.className = "live"; };
}

const ROUTES = [
  [/^#\/s\/([A-Za-z0-9_-]{1,64})$/, "list", (m) => submissionView(m[1])],
  [/^#\/f\/([0-9a-f]{64})$/, "list", (m) => fileView(m[1], resultCard)],
  [/^#\/alerts$/, "alerts", () => alertsView()],
  [/^#\/services$/, "services", () => servicesView()],
  [/^#\/audit$/, "audit", () => auditView()],
];

function route() {
  clearTimeout(servicesTimer);
  const hash = location.hash || "#/";
  for (const [pattern, nav, render] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      markNav(nav);
      return render(match);
    }
  }
  markNav("list");
  return listView(new URLSearchParams(hash.startsWith("#/?") ? hash.slice(3) : ""));
}

function markNav(current) {
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("current", a.dataset.nav === current));
}

// The header: who is signed in (and a way out), what their role lets them see and do.
function showAccount() {
  const account = document.getElementById("account");
  account.replaceChildren(); // then append(), which skips the absent sign-out button (replaceChildren would print "null")
  append(account, [
    el("span", { id: "whoami", title: `signed in ${session.via === "local" ? "as the local user (no accounts yet)" : `by ${session.via}`}` },
      session.user, el("span", { class: "role" }, session.role)),
    session.via === "session" ? el("button", { class: "small", id: "sign-out", onclick: signOut }, "sign out") : null]);
  document.getElementById("nav").hidden = false; // shown once signed in (the sign-in page needs none of it)
  document.querySelector("[data-nav=audit]").hidden = !may("admin");
  document.querySelectorAll(".needs-submitter").forEach((node) => { node.hidden = !may("submitter"); });
}

async function start() {
  showAccount();
  window.addEventListener("hashchange", route);
  route();
  connect();
}

window.addEventListener("signed-out", () => location.reload());
loadSession().then((me) => (me.signedIn ? start() : loginView(start)))
  .catch((error) => show(el("div", { class: "errors" }, `Could not reach the web front: ${error.message}`)));
