// Section bodies, one renderer per Assemblyline 4 body format (TEXT, MEMORY_DUMP, KEY_VALUE,
// ORDERED_KEY_VALUE, JSON, TABLE, URL, GRAPH_DATA, PROCESS_TREE, IMAGE, MULTI/DIVIDER, TIMELINE,
// SANDBOX). Structured bodies are JSON text on the wire; one that does not parse, or is not the
// shape its format says, is shown as text. The page's el() is passed in, so every string from a
// sample reaches the page as a text node, never through an HTML parser.
//
//   sectionBody(section, el, objectUrl)   objectUrl(name) -> the download URL of a stored object
//
// A section its service marked auto_collapse comes folded, under a "show all N lines" control.

const plain = (v) => (typeof v === "string" ? v : JSON.stringify(v));
const SPARKS = "▁▂▃▄▅▆▇█";

export function sectionBody(s, el, objectUrl) {
  const body = bodyOf(s, el, objectUrl);
  if (!s.auto_collapse) return body;
  // Folded by its service (e.g. every imported name of a PE): a control to unfold it.
  const lines = (s.body_format || "TEXT") === "TEXT" ? s.body.split("\n").length : 0;
  return el("details", { class: "folded" }, el("summary", {}, lines ? `show all ${lines} lines` : "show"), body);
}

function bodyOf(s, el, objectUrl) {
  const format = s.body_format || "TEXT";
  if (format === "TEXT" || format === "MEMORY_DUMP") return el("pre", {}, s.body);
  let data;
  try { data = JSON.parse(s.body); } catch { return el("pre", {}, s.body); }
  try {
    return part(format, data, s.body_config || {}, el, objectUrl);
  } catch {
    return folded(data, el);
  }
}

function part(format, data, config, el, objectUrl) {
  const render = RENDERERS[format];
  return render ? render(data, config, el, objectUrl) : folded(data, el);
}

function folded(data, el) {
  const text = JSON.stringify(data, null, 2);
  return el("details", { open: text.length < 2000 }, el("summary", {}, "JSON"), el("pre", {}, text));
}

function keyValues(pairs, el) {
  return el("dl", { class: "kv" }, pairs.map(([k, v]) => [el("dt", {}, k), el("dd", {}, plain(v))]));
}

function table(rows, config, el) {
  const columns = config.column_order || [...new Set(rows.flatMap((row) => (row && typeof row === "object" ? Object.keys(row) : [])))];
  return el("table", {}, el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c)))),
    el("tbody", {}, rows.map((row) => el("tr", {}, columns.map((c) => el("td", {}, row[c] === undefined ? "" : plain(row[c])))))));
}

// Only http(s) links are clickable, opened without a referrer; anything else (javascript:, data:) is text.
function urlLink(link, el) {
  const href = typeof link === "string" ? link : link.url;
  const name = typeof link === "string" ? link : link.name || link.url;
  let safe = false;
  try { safe = ["http:", "https:"].includes(new URL(href).protocol); } catch { /* not a URL */ }
  return safe ? el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" }, name) : el("span", { class: "mono" }, `${name} (${href})`);
}

function processTree(procs, el) {
  return el("ul", { class: "ptree" }, procs.map((p) => el("li", {},
    el("span", { class: "mono" }, `${p.process_pid} ${p.process_name}`), ": ", el("span", { class: "mono muted" }, p.command_line || ""),
    Object.keys(p.signatures || {}).length ? el("span", { class: "chip" }, Object.keys(p.signatures).join(", ")) : null,
    p.safelisted ? el("span", { class: "muted" }, " (safelisted)") : null,
    (p.children || []).length ? processTree(p.children, el) : null)));
}

function graph(data, el) {
  const [low, high] = data.data.domain;
  const span = (high - low) || 1;
  const spark = data.data.values.map((v) => SPARKS[Math.min(SPARKS.length - 1, Math.max(0, Math.round(((v - low) / span) * (SPARKS.length - 1))))]).join("");
  return el("div", { class: "graph", title: `${data.type} ${low}..${high}` }, el("span", { class: "mono" }, spark));
}

// Images are stored objects of the result: shown scaled by the browser, linked to the original.
function images(items, el, objectUrl) {
  return el("div", { class: "images" }, items.map((item) => {
    const url = objectUrl(item.img.name);
    return el("figure", {}, el("a", { href: url, download: "" }, el("img", { src: url, alt: item.img.description || item.img.name, loading: "lazy", style: "max-width: 320px; max-height: 240px" })),
      el("figcaption", {}, item.img.name, item.img.description ? ` — ${item.img.description}` : ""));
  }));
}

function timeline(nodes, el) {
  return el("ol", { class: "timeline" }, nodes.map((n) => el("li", {},
    el("span", { class: "muted" }, n.opposite_content || ""), " ", el("strong", {}, n.title), ": ", n.content || "",
    n.score ? el("span", { class: "score" }, ` ${n.score > 0 ? "+" : ""}${n.score}`) : null)));
}

function sandbox(data, el) {
  const machine = data.machine_metadata || {};
  return el("div", { class: "sandbox" },
    keyValues([["sandbox", [data.sandbox_name, data.sandbox_version].filter(Boolean).join(" ")], ["platform", machine.platform || ""],
      ["processes", (data.processes || []).length], ["network flows", (data.netflows || []).length], ["signatures", (data.signatures || []).length]], el),
    (data.processes || []).length ? table(data.processes.map((p) => ({ pid: p.pid, ppid: p.ppid, image: p.image, command_line: p.command_line })), {}, el) : null,
    (data.netflows || []).length ? table(data.netflows.map((f) => ({ protocol: f.transport_layer_protocol, destination: `${f.destination_ip}:${f.destination_port}`, type: f.connection_type })), {}, el) : null,
    (data.signatures || []).length ? el("ul", {}, data.signatures.map((sig) => el("li", {}, `${sig.name} (${sig.type})`, sig.message ? `: ${sig.message}` : ""))) : null);
}

function multi(parts, el, objectUrl) {
  return el("div", { class: "multi" }, parts.map(([format, data, config]) => {
    if (format === "DIVIDER") return el("hr", {});
    if (format === "TEXT" || format === "MEMORY_DUMP") return el("pre", {}, plain(data));
    return part(format, data, config || {}, el, objectUrl);
  }));
}

const RENDERERS = {
  KEY_VALUE: (data, config, el) => keyValues(Object.entries(data), el),
  ORDERED_KEY_VALUE: (data, config, el) => keyValues(data, el),
  TABLE: (data, config, el) => table(data, config, el),
  URL: (data, config, el) => el("ul", {}, data.map((link) => el("li", {}, urlLink(link, el)))),
  GRAPH_DATA: (data, config, el) => graph(data, el),
  PROCESS_TREE: (data, config, el) => processTree(data, el),
  IMAGE: (data, config, el, objectUrl) => images(data, el, objectUrl),
  MULTI: (data, config, el, objectUrl) => multi(data, el, objectUrl),
  TIMELINE: (data, config, el) => timeline(data, el),
  SANDBOX: (data, config, el) => sandbox(data, el),
};
