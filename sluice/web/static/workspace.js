// The team workspace views: signing in, a page per file (hex, strings), alerts and their triage,
// resubmission with service parameters, ATT&CK names, the audit log. Same rule as app.js: every
// string from a sample, a service or another user goes through el()/text nodes.

import { api, bytes, el, may, postJson, say, scoreText, session, show, verdictBadge, when } from "./dom.js";

// -- signing in ---------------------------------------------------------------------------------

export async function loadSession() {
  const me = await api("/api/me");
  Object.assign(session, me, { signedIn: me.signed_in });
  return session;
}

export function loginView(onSignedIn) {
  const user = el("input", { id: "login-user", autocomplete: "username", required: true, "aria-label": "user name" });
  const password = el("input", { id: "login-password", type: "password", autocomplete: "current-password", required: true, "aria-label": "password" });
  const problem = el("p", { class: "login-problem", id: "login-problem", hidden: true });
  const form = el("form", { class: "panel login", id: "login-form", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const me = await postJson("/api/login", { user: user.value.trim(), password: password.value });
      Object.assign(session, me, { signedIn: true });
      onSignedIn();
    } catch (error) {
      problem.textContent = error.message;
      problem.hidden = false;
      password.value = "";
    }
  } },
  el("h1", {}, "Sign in to Sluice"),
  el("label", {}, "User name", user), el("label", {}, "Password", password), problem,
  el("button", { type: "submit", class: "primary" }, "Sign in"),
  session.oidc ? el("p", {}, el("a", { class: "button", id: "oidc-login", href: "/api/oidc/login" }, "Sign in with your organisation")) : null);
  show(form);
  user.focus();
}

export async function signOut() {
  await api("/api/logout", { method: "POST" }).catch(() => null);
  location.reload();
}

// -- ATT&CK ---------------------------------------------------------------------------------------

let attackTable = null;
export async function loadAttack() {
  attackTable = attackTable || await api("/api/attack").catch(() => ({}));
  return attackTable;
}

// "T1059.001 Command and Scripting Interpreter: PowerShell"; a sub-technique missing from the table is named by its parent.
export function attackLabel(id) {
  const name = attackTable?.[id] || attackTable?.[id.split(".")[0]] || "";
  return name ? `${id} ${name}` : id;
}

export function attackChip(id) {
  return el("span", { class: "attack", title: "MITRE ATT&CK" }, attackLabel(id));
}

// Every technique the submission's heuristics name, with how many heuristics named it.
export function techniqueSummary(summary, walk) {
  const seen = new Map();
  walk(summary.files, (node) => (node.results || []).forEach((r) => (r.sections || []).forEach((s) =>
    (s.heuristic?.attack_ids || []).forEach((id) => seen.set(id, (seen.get(id) || 0) + 1)))));
  if (!seen.size) return null;
  return [el("h2", {}, "ATT&CK techniques"), el("div", { class: "chips", id: "techniques" },
    [...seen.entries()].sort().map(([id, n]) => el("span", { class: "chip" }, attackChip(id), n > 1 ? el("span", { class: "k" }, `×${n}`) : null)))];
}

// -- downloads ------------------------------------------------------------------------------------

// CaRT and zip (password "infected") for everyone; the raw bytes only for analysts, as a separate, labelled choice.
export function downloadLinks(href) {
  const sep = href.includes("?") ? "&" : "?";
  return [
    el("a", { href, download: "", class: "dl-cart", title: "neutered: unpack with `cart -d`" }, "download (CaRT)"),
    el("a", { href: `${href}${sep}format=zip`, download: "", class: "dl-zip", title: "AES zip, password: infected" }, "zip (infected)"),
    may("analyst") ? el("a", { href: `${href}${sep}format=raw`, download: "", class: "dl-raw danger", title: "the live sample itself" }, "raw bytes") : null,
  ];
}

// -- a page per file ------------------------------------------------------------------------------

const HEX_PAGE = 4096;
const ROW = 16;

export async function fileView(sha256, renderResult) {
  let page;
  try {
    page = await api(`/api/files/${sha256}`);
  } catch (error) {
    return show(el("div", { class: "errors", id: "file-missing" }, `File ${sha256}: ${error.message}`));
  }
  if (location.hash !== `#/f/${sha256}`) return;
  const hex = el("pre", { class: "hex", id: "hex" });
  const strings = el("table", { class: "strings", id: "strings" }, el("thead", {}, el("tr", {}, el("th", { class: "num" }, "offset"),
    el("th", {}, "encoding"), el("th", {}, "string"))), el("tbody"));
  const hexMore = el("button", { id: "hex-more" }, "more bytes");
  const stringsMore = el("button", { id: "strings-more" }, "more strings");
  show(
    el("div", { class: "panel" },
      el("div", { class: "head" }, el("span", { class: "title", id: "file-name" }, page.name || sha256), el("span", { class: "node-type" }, page.type)),
      el("div", { class: "facts" }, el("span", { class: "mono" }, sha256), el("span", {}, bytes(page.size)),
        el("span", {}, `in ${page.seen_in > 1000 ? "more than 1,000" : page.seen_in} submission${page.seen_in === 1 ? "" : "s"}`)),
      el("div", { class: "downloads" }, downloadLinks(`/api/files/${sha256}/download`)),
      may("submitter") ? resubmitPanel(`/api/files/${sha256}/resubmit`) : null),
    el("h2", {}, "Submissions it appeared in"),
    el("table", { class: "list", id: "file-submissions" }, el("tbody", {}, page.submissions.map((row) => el("tr", {
      onclick: () => { location.hash = `#/s/${row.sid}`; } },
      el("td", { class: "muted" }, when(row.completed_at)), el("td", {}, verdictBadge(row.verdict)), el("td", { class: "num" }, scoreText(row.score)),
      el("td", {}, el("a", { href: `#/s/${encodeURIComponent(row.sid)}` }, row.name || row.sid)), el("td", { class: "muted" }, row.submitter || ""))))),
    el("h2", {}, "Results ", el("span", { class: "muted" }, "(from its newest submission)")),
    el("div", { id: "file-results" }, page.results.map((r) => renderResult(page.latest_sid, r))),
    el("h2", {}, "Entropy ", el("span", { class: "muted" }, "bits per byte, 0 to 8, across the file")),
    entropyGraph(sha256),
    el("div", { class: "columns" },
      el("section", {}, el("h2", {}, "Hex"), hex, hexMore),
      el("section", {}, el("h2", {}, "Strings ", el("span", { class: "muted" }, "ASCII and UTF-16LE, 6+ characters")), strings, stringsMore)),
  );
  let hexOffset = 0;
  let stringsOffset = 0;
  const loadHex = async () => {
    const chunk = await api(`/api/files/${sha256}/hex?${new URLSearchParams({ offset: hexOffset, length: HEX_PAGE })}`);
    hex.append(hexRows(chunk.offset, chunk.hex));
    hexOffset = chunk.offset + chunk.hex.length / 2;
    hexMore.hidden = hexOffset >= chunk.size;
  };
  const loadStrings = async () => {
    const chunk = await api(`/api/files/${sha256}/strings?${new URLSearchParams({ offset: stringsOffset })}`);
    strings.tBodies[0].append(...chunk.strings.map((s) => el("tr", {}, el("td", { class: "num mono" }, `0x${s.offset.toString(16)}`),
      el("td", { class: "muted" }, s.encoding), el("td", { class: "mono" }, s.text))));
    stringsOffset = chunk.next_offset;
    stringsMore.hidden = stringsOffset >= chunk.size;
    if (chunk.truncated) say("More strings in that part of the file than one page shows; the rest are skipped.");
  };
  hexMore.addEventListener("click", () => loadHex().catch((e) => say(`hex: ${e.message}`, true)));
  stringsMore.addEventListener("click", () => loadStrings().catch((e) => say(`strings: ${e.message}`, true)));
  await Promise.all([loadHex(), loadStrings()]).catch((e) => say(e.message, true));
}

// One bar per block (its height: the block's entropy out of 8 bits), each titled with its offset.
function entropyGraph(sha256) {
  const graph = el("div", { class: "entropy", id: "entropy", role: "img", "aria-label": "entropy graph" });
  api(`/api/files/${sha256}/entropy`).then((profile) => {
    graph.replaceChildren(...profile.values.map((bits, i) => {
      const bar = el("span", { class: `bar${bits >= 7.2 ? " high" : ""}`, title: `0x${(i * profile.block_size).toString(16)}: ${bits.toFixed(2)} bits` });
      bar.style.height = `${(bits / 8) * 100}%`;
      return bar;
    }));
  }).catch((error) => graph.replaceChildren(el("span", { class: "muted" }, `entropy: ${error.message}`)));
  return graph;
}

// Offset, 16 bytes in hex, and the ASCII dump (dots for the unprintable), one text line per row.
function hexRows(offset, hexText) {
  const lines = [];
  for (let i = 0; i < hexText.length; i += ROW * 2) {
    const row = hexText.slice(i, i + ROW * 2);
    const pairs = row.match(/../g) || [];
    const ascii = pairs.map((p) => { const c = parseInt(p, 16); return c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : "."; }).join("");
    const at = (offset + i / 2).toString(16).padStart(8, "0");
    lines.push(`${at}  ${pairs.slice(0, 8).join(" ").padEnd(23)}  ${pairs.slice(8).join(" ").padEnd(23)}  |${ascii}|\n`);
  }
  return document.createTextNode(lines.join(""));
}

// -- resubmission ----------------------------------------------------------------------------------

// "Analyse again": deep scan, ignore cache, the services to run, and each one's parameters from its manifest.
export function resubmitPanel(endpoint) {
  const body = el("div", { class: "resubmit-body" }, el("span", { class: "muted" }, "loading services…"));
  const panel = el("details", { class: "resubmit", id: "resubmit" }, el("summary", {}, "Analyse again…"), body);
  panel.addEventListener("toggle", async () => {
    if (!panel.open || panel.dataset.loaded) return;
    panel.dataset.loaded = "1";
    let forms;
    try {
      forms = await api("/api/services/params");
    } catch (error) {
      body.replaceChildren(el("span", { class: "errors" }, error.message));
      return;
    }
    const deep = el("input", { type: "checkbox", id: "rs-deep" });
    const fresh = el("input", { type: "checkbox", id: "rs-ignore-cache" });
    const rows = forms.map((form) => {
      const pick = el("input", { type: "checkbox", class: "rs-service", value: form.name, "aria-label": form.name });
      const inputs = form.params.map((p) => {
        const input = p.type === "bool" ? el("input", { type: "checkbox", checked: !!p.default })
          : p.type === "list" ? el("select", {}, p.choices.map((c) => el("option", { value: c, selected: c === p.default }, String(c))))
          : el("input", { type: p.type === "int" ? "number" : "text", value: p.default ?? "", placeholder: String(p.default ?? "") });
        input.dataset.service = form.name;
        input.dataset.param = p.name;
        input.dataset.type = p.type;
        input.setAttribute("aria-label", `${form.name} ${p.name}`);
        input.classList.add("rs-param");
        return el("label", { class: "param" }, p.name, input);
      });
      return el("div", { class: "rs-row", "data-service": form.name }, el("label", {}, pick, form.name), inputs);
    });
    const submit = el("button", { class: "primary", id: "rs-submit", onclick: async () => {
      const services = [...body.querySelectorAll(".rs-service:checked")].map((c) => c.value);
      const serviceParams = {};
      body.querySelectorAll(".rs-param").forEach((input) => {
        const { service, param, type } = input.dataset;
        const value = type === "bool" ? input.checked : type === "int" ? Number(input.value) : input.value;
        const unchanged = type === "bool" ? input.defaultChecked === value : String(input.defaultValue ?? "") === String(input.value);
        if (unchanged && type !== "list") return; // only what the analyst set
        (serviceParams[service] ||= {})[param] = value;
      });
      try {
        const done = await postJson(endpoint, { deep_scan: deep.checked, ignore_cache: fresh.checked, services, service_params: serviceParams });
        location.hash = `#/s/${done.sid}`;
      } catch (error) {
        say(`Analyse again: ${error.message}`, true);
      }
    } }, "Analyse again");
    body.replaceChildren(
      el("div", { class: "rs-options" }, el("label", {}, deep, "deep scan"), el("label", {}, fresh, "ignore cached results")),
      el("p", { class: "muted" }, "Services (none ticked: every service that takes the file) and their parameters:"),
      ...rows, submit);
  });
  return panel;
}

// -- alerts and triage -------------------------------------------------------------------------------

export const STATES = ["new", "in_progress", "malicious", "benign", "false_positive"];
const stateLabel = (s) => s.replace("_", " ");

export function triagePanel(sid) {
  const box = el("div", { class: "panel triage", id: "triage" }, el("h2", {}, "Triage"), el("span", { class: "muted" }, "loading…"));
  // Kept across re-renders (a colleague's change arriving live) so a comment being typed survives them.
  const comment = el("textarea", { id: "triage-comment", rows: 2, placeholder: "add a comment", "aria-label": "comment", disabled: !may("analyst") });
  let shown = -1; // the updated_at on screen: an answer that left before a newer one arrived is not shown over it
  const render = (triage) => {
    if ((triage.updated_at || 0) < shown) return;
    shown = triage.updated_at || 0;
    const state = el("select", { id: "triage-state", "aria-label": "triage state", disabled: !may("analyst") },
      STATES.map((s) => el("option", { value: s, selected: s === triage.state }, stateLabel(s))));
    const owner = el("input", { id: "triage-owner", value: triage.owner || "", placeholder: "owner", "aria-label": "owner", disabled: !may("analyst") });
    const change = async (fields) => {
      try {
        render(await postJson(`/api/alerts/${sid}/triage`, fields));
        if (fields.comment) comment.value = "";
      } catch (error) {
        say(`Triage: ${error.message}`, true);
      }
    };
    state.addEventListener("change", () => change({ state: state.value }));
    box.replaceChildren(el("h2", {}, "Triage"),
      el("div", { class: "filters" }, el("label", {}, "state ", state), el("label", {}, "owner ", owner),
        el("button", { id: "triage-take", disabled: !may("analyst"), onclick: () => change({ owner: session.user, state: triage.state === "new" ? "in_progress" : triage.state }) }, "take it"),
        el("button", { id: "triage-assign", disabled: !may("analyst"), onclick: () => change({ owner: owner.value.trim() }) }, "assign"),
        triage.updated_by ? el("span", { class: "muted" }, `changed by ${triage.updated_by} ${when(triage.updated_at)}`) : null),
      el("ul", { class: "comments", id: "triage-comments" }, (triage.comments || []).map((c) =>
        el("li", {}, el("strong", {}, c.user), el("span", { class: "muted" }, ` ${when(c.at)}: `), c.text))),
      el("div", { class: "filters" }, comment, el("button", { id: "triage-send", disabled: !may("analyst"), onclick: () => {
        if (comment.value.trim()) change({ comment: comment.value.trim() });
      } }, "comment")));
  };
  api(`/api/alerts/${sid}`).then(render).catch((error) => box.replaceChildren(el("span", { class: "muted" }, error.message)));
  box.refresh = () => api(`/api/alerts/${sid}`).then(render).catch(() => null);
  return box;
}

const alertFilter = { state: "", owner: "" };

export async function alertsView() {
  let data;
  const query = new URLSearchParams(Object.entries(alertFilter).filter(([, v]) => v !== ""));
  try {
    data = await api(`/api/alerts?${query}`);
  } catch (error) {
    return show(el("div", { class: "errors" }, `Could not load alerts: ${error.message}`));
  }
  if (location.hash !== "#/alerts") return;
  const state = el("select", { "aria-label": "state", id: "alert-state", onchange: (e) => { alertFilter.state = e.target.value; alertsView(); } },
    el("option", { value: "" }, "any state"), STATES.map((s) => el("option", { value: s, selected: alertFilter.state === s }, stateLabel(s))));
  show(el("h1", {}, "Alerts ", el("span", { class: "muted" }, `score ≥ ${data.threshold}`)),
    el("div", { class: "filters" }, state,
      el("button", { id: "alert-mine", onclick: () => { alertFilter.owner = alertFilter.owner ? "" : session.user; alertsView(); } },
        alertFilter.owner ? "everyone's" : "mine only"),
      el("span", { class: "muted" }, `${data.matched} alert${data.matched === 1 ? "" : "s"}`)),
    el("table", { class: "list", id: "alerts" }, el("thead", {}, el("tr", {}, el("th", {}, "completed"), el("th", {}, "verdict"),
      el("th", { class: "num" }, "score"), el("th", {}, "name"), el("th", {}, "state"), el("th", {}, "owner"), el("th", { class: "num" }, "comments"))),
    el("tbody", {}, data.items.map((a) => el("tr", { "data-sid": a.submission.sid, onclick: () => { location.hash = `#/s/${a.submission.sid}`; } },
      el("td", { class: "muted" }, when(a.submission.completed_at)), el("td", {}, verdictBadge(a.submission.verdict)),
      el("td", { class: "num" }, scoreText(a.submission.score)), el("td", {}, a.submission.name || a.submission.sid),
      el("td", {}, el("span", { class: `state st-${a.state}` }, stateLabel(a.state))), el("td", {}, a.owner || ""),
      el("td", { class: "num" }, String(a.comments)))))),
    data.items.length ? null : el("p", { class: "empty" }, "No alerts match."));
}

// -- audit (admins) ------------------------------------------------------------------------------------

export async function auditView() {
  let data;
  try {
    data = await api("/api/audit?limit=200");
  } catch (error) {
    return show(el("div", { class: "errors" }, `Audit log: ${error.message}`));
  }
  show(el("h1", {}, "Audit log"), el("table", { class: "list", id: "audit" },
    el("thead", {}, el("tr", {}, el("th", {}, "when"), el("th", {}, "who"), el("th", {}, "did"), el("th", {}, "what"), el("th", {}, "details"), el("th", {}, "from"))),
    el("tbody", {}, data.items.map((e) => el("tr", {}, el("td", { class: "muted" }, when(e.at)), el("td", {}, e.user), el("td", {}, e.action),
      el("td", { class: "mono" }, e.target || ""), el("td", { class: "muted" }, Object.entries(e.detail || {}).map(([k, v]) => `${k}=${v}`).join(" ")),
      el("td", { class: "muted" }, e.remote || ""))))));
}
