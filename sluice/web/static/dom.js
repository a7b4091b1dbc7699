// Sluice page helpers shared by every view. Every string that came from a sample or a service
// reaches the page through el()/text nodes (textContent), never through an HTML parser.

export const view = document.getElementById("view");
const notice = document.getElementById("notice");
export const VERDICTS = ["malicious", "highly_suspicious", "suspicious", "info", "safe"];

// -- DOM helpers --------------------------------------------------------------------------------

// el("td", {class: "num"}, "text", child): attributes by setAttribute, children as nodes or text.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function show(...children) {
  view.replaceChildren();
  append(view, children);
}

export function say(message, isError = false) {
  notice.textContent = message;
  notice.className = isError ? "notice error" : "notice";
  notice.hidden = false;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { notice.hidden = true; }, isError ? 12000 : 5000);
}

export const verdictOf = (score) =>
  score >= 1000 ? "malicious" : score >= 700 ? "highly_suspicious" : score >= 300 ? "suspicious" : score >= 0 ? "info" : "safe";
export const verdictBadge = (verdict, big = false) =>
  el("span", { class: `verdict ${verdict}${big ? " big" : ""}`, "data-verdict": verdict }, verdict.replace("_", " "));
export const scoreText = (score) => el("span", { class: `score s-${verdictOf(score)}` }, String(score));
export const when = (epoch) => (epoch ? new Date(epoch * 1000).toLocaleString() : "");
export const ago = (epoch) => {
  if (!epoch) return "never";
  const s = Math.max(0, Date.now() / 1000 - epoch);
  return s < 90 ? `${Math.round(s)} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : when(epoch);
};
export const bytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);

// Who is signed in, and the CSRF token every state-changing request carries (GET /api/me).
export const session = { signedIn: false, user: "", role: "", via: "", csrf: "", oidc: false };
const RANKS = ["viewer", "submitter", "analyst", "admin"];
export const may = (role) => RANKS.indexOf(session.role) >= RANKS.indexOf(role);

export async function api(path, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const headers = { ...(options.headers || {}) };
  if (!["GET", "HEAD"].includes(method) && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const response = await fetch(path, { ...options, headers });
  if (response.ok) return response.status === 204 ? null : response.json();
  let detail = response.statusText;
  try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
  const error = new Error(detail);
  error.status = response.status;
  if (response.status === 401 && session.signedIn) window.dispatchEvent(new Event("signed-out"));
  throw error;
}

export async function postJson(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

export function walk(nodes, visit) {
  for (const node of nodes) {
    visit(node);
    walk(node.children || [], visit);
  }
}

