#!/usr/bin/env node
// Submit files and URIs to Sluice from Node.js, then print each verdict and its alerts.
//
// Only the `nats` and `@msgpack/msgpack` packages: everything else is the wire contract of
// docs/wire.md. Usage:
//   node sluice-submit.mjs [--server nats://127.0.0.1:4222] [--prefix sluice] [--nkey FILE]
//                          [--identity NAME] [--timeout 120] [--json] [--file PATH]... [--uri URI]...
// Each --file and --uri is its own submission. Exit code: 0 when every verdict came, 1 otherwise.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { connect, headers, nkeyAuthenticator, nkeys } from "nats";
import { decode, encode } from "@msgpack/msgpack";

const WIRE_VERSION = "1.1"; // the contract this client follows (1.1: FileRef.upload): the Sluice-Wire header
const INLINE_MAX = 64 * 1024; // files up to this size travel inside the submission
const CHUNK = 512 * 1024; // bytes per uploaded chunk (any size is read; under the server's 1 MiB max_payload)
const WINDOW = 16; // chunks in flight while uploading
const DEFAULT_IDENTITY = "submitter";

const { values: opts } = parseArgs({
  options: {
    server: { type: "string", default: process.env.NATS_URL ?? "nats://127.0.0.1:4222" },
    prefix: { type: "string", default: "sluice" },
    nkey: { type: "string" }, // an nkey seed file, as `sluice auth init` writes (submitter.nk)
    // Who we are: names our submission subject and our uploads. By default the nkey file's name
    // without `.nk` (submitter-alice.nk -> submitter-alice), as `sluice auth init` names them.
    identity: { type: "string" },
    timeout: { type: "string", default: "120" },
    json: { type: "boolean", default: false },
    file: { type: "string", multiple: true, default: [] },
    uri: { type: "string", multiple: true, default: [] },
  },
});

const prefix = opts.prefix;
const identity = opts.identity ?? (opts.nkey ? basename(opts.nkey, ".nk") : DEFAULT_IDENTITY);
if (!/^[A-Za-z0-9_-]+$/.test(identity)) {
  console.error(`identity ${JSON.stringify(identity)} is not one subject token: name it with --identity ` +
                `(submitter, or submitter-<name> for submitter:<name>)`);
  process.exit(2);
}
const bucket = `${prefix}-files`;
// The default identity keeps wire 1.0's bare subject; every other one has its own.
const submitSubject = identity === DEFAULT_IDENTITY ? `${prefix}.submit.root` : `${prefix}.submit.root.${identity}`;
const streamOf = (kind) => `${prefix.toUpperCase().replaceAll("-", "_")}_${kind}`;
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

function connectOptions() {
  const options = { servers: opts.server, name: "sluice-node-client" };
  if (opts.nkey) {
    const seed = readFileSync(opts.nkey, "utf8").trim();
    options.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
    // Under Sluice's auth every identity has its own inbox space (bus/auth.py).
    options.inboxPrefix = `_INBOX_${nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey()}`;
  }
  return options;
}

// A file travels as a FileRef named by its sha256: a small file inline (the dispatcher stores it);
// a larger one fetched from the object store, where only the dispatcher (or admin) may give bytes
// a name. So unless an object of that name is there already (checked when it was named), we
// upload the chunks under our own token, `$O.<bucket>.C.<identity>.<id>` (the only place in the
// store our identity may publish), and say where in `upload`: the dispatcher reads them whole,
// checks them against the sha256 and size, and only then names the object.
async function fileRef(store, js, path) {
  const bytes = new Uint8Array(readFileSync(path));
  const ref = { sha256: sha256(bytes), size: bytes.length, name: basename(path) };
  if (bytes.length <= INLINE_MAX) return { ...ref, data: bytes };
  if ((await store.info(ref.sha256)) === null) {
    ref.upload = `${identity}.${randomBytes(16).toString("hex")}`;
    await uploadChunks(js, ref.upload, bytes);
  }
  return ref;
}

// The chunks of an upload, in order (one subject, so the stream keeps their order), a window of
// acknowledged publishes at a time. Nothing else is written: no meta message, no purge.
async function uploadChunks(js, upload, bytes) {
  const subject = `$O.${bucket}.C.${upload}`;
  const starts = [];
  for (let i = 0; i < bytes.length; i += CHUNK) starts.push(i);
  for (let w = 0; w < starts.length; w += WINDOW) {
    const window = starts.slice(w, w + WINDOW).map((i) => js.publish(subject, bytes.subarray(i, i + CHUNK)));
    await Promise.all(window);
  }
}

// A URI travels inline, named by the sha256 of its value. It must already be in Sluice's canonical
// form (lower-case scheme and host, IDN as punycode), or the dispatcher refuses it as a dead letter.
function uriRef(uri) {
  const bytes = new TextEncoder().encode(uri);
  return { sha256: sha256(bytes), size: bytes.length, name: uri, data: bytes, kind: "uri" };
}

async function submit(js, ref) {
  const sid = randomUUID().replaceAll("-", "");
  const submission = { sid, files: [ref], params: {}, metadata: { client: "node" }, submitted_at: Date.now() / 1000 };
  const h = headers();
  h.set("Sluice-Wire", WIRE_VERSION);
  await js.publish(submitSubject, encode(submission), { msgID: sid, headers: h });
  return sid;
}

// The latest message on a subject of the summaries stream (it keeps one per subject), or null.
async function lastOn(jsm, subject) {
  try {
    const msg = await jsm.streams.getMessage(streamOf("SUMMARIES"), { last_by_subj: subject });
    return decode(msg.data);
  } catch (err) {
    if (String(err?.code) === "404" || /no message found/i.test(err?.message ?? "")) return null;
    throw err;
  }
}

async function awaitVerdict(jsm, sid, deadline) {
  while (Date.now() < deadline) {
    const summary = await lastOn(jsm, `${prefix}.summary.${sid}`);
    if (summary) {
      // The alert, if the score reached the threshold, is published right after the summary.
      let alert = await lastOn(jsm, `${prefix}.alert.${sid}`);
      for (let i = 0; !alert && i < 10 && summary.score >= 500; i++) {
        await new Promise((r) => setTimeout(r, 100));
        alert = await lastOn(jsm, `${prefix}.alert.${sid}`);
      }
      return { summary, alert };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

function* walk(nodes) {
  for (const node of nodes ?? []) {
    yield node;
    yield* walk(node.children);
  }
}

function show(label, sid, outcome) {
  if (opts.json) {
    console.log(JSON.stringify({ submitted: label, sid, summary: outcome?.summary ?? null, alert: outcome?.alert != null }));
    return;
  }
  if (!outcome) {
    console.log(`${label}: no verdict for ${sid} within ${opts.timeout} s`);
    return;
  }
  const { summary, alert } = outcome;
  console.log(`${label}: ${summary.verdict} (score ${summary.score}), ${summary.file_count ?? 0} sample(s), ` +
              `${summary.errors ?? 0} error(s)${alert ? ", ALERT" : ""}  [sid ${sid}]`);
  for (const node of walk(summary.files)) {
    const services = (node.results ?? []).map((r) => `${r.service}:${r.score}`).join(" ");
    console.log(`${"  ".repeat((node.depth ?? 0) + 1)}${node.name} ${node.type} score ${node.score ?? 0}  ${services}`);
  }
}

const nc = await connect(connectOptions());
// checkAPI off: no $JS.API.INFO round trip, which Sluice's submitter identity may not make.
const js = nc.jetstream({ checkAPI: false });
const jsm = await js.jetstreamManager();
let missing = 0;
try {
  const submitted = [];
  const store = opts.file.length ? await js.views.os(bucket) : null;
  for (const path of opts.file) submitted.push([path, await submit(js, await fileRef(store, js, path))]);
  for (const uri of opts.uri) submitted.push([uri, await submit(js, uriRef(uri))]);
  const deadline = Date.now() + Number(opts.timeout) * 1000;
  for (const [label, sid] of submitted) {
    const outcome = await awaitVerdict(jsm, sid, deadline);
    if (!outcome) missing++;
    show(label, sid, outcome);
  }
} finally {
  await nc.drain();
}
process.exit(missing ? 1 : 0);
