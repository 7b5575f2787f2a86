// strata explorer: plain JavaScript, no build step. It talks to the JSON API with the API key
// kept in sessionStorage, shows a stream's state at a chosen time (asked of the server), and checks
// an event's inclusion proof with WebCrypto against the signed checkpoint.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { key: sessionStorage.getItem("strata.key") || "", logKey: sessionStorage.getItem("strata.logkey") || "", events: [], streamsNext: "" };

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + state.key } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || r.status + " " + r.statusText);
  return body;
}

function showError(e) { $("error").textContent = e ? String(e.message || e) : ""; }

// --- streams ---

async function loadStreams(more) {
  try {
    showError();
    const q = new URLSearchParams({ limit: "100", prefix: $("prefix").value });
    if (more) q.set("after", state.streamsNext);
    const page = await api("/v1/streams?" + q);
    const ul = $("streams");
    if (!more) ul.textContent = "";
    for (const s of page.streams) {
      const li = document.createElement("li");
      li.textContent = s.name + " (" + s.version + ")";
      li.dataset.stream = s.name;
      li.addEventListener("click", () => openStream(s.name));
      ul.appendChild(li);
    }
    state.streamsNext = page.next || "";
    $("more-streams").hidden = !page.next;
  } catch (e) { showError(e); }
}

// --- a stream: timeline, state at a time, diffs ---

async function openStream(name) {
  try {
    showError();
    for (const li of $("streams").children) li.classList.toggle("sel", li.dataset.stream === name);
    let events = [], from = "";
    for (;;) {
      const q = new URLSearchParams({ limit: "1000" });
      if (from) q.set("from", from);
      const page = await api("/v1/streams/" + encodeURIComponent(name) + "/events?" + q);
      events = events.concat(page.events);
      if (!page.next || events.length >= 20000) break;
      from = page.next;
    }
    state.events = events;
    $("stream-title").textContent = name;
    $("stream-view").hidden = false;
    const slider = $("slider");
    slider.min = "0"; slider.max = String(Math.max(events.length - 1, 0)); slider.value = slider.max;
    renderTimeline();
    renderState();
  } catch (e) { showError(e); }
}

function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

// fold applies one event to the state: a shallow merge of the event's data object, with
// null deleting a key. It returns the new state and the change per key.
function fold(prev, ev) {
  const next = Object.assign({}, prev), diff = [];
  const data = isObject(ev.data) ? ev.data : { value: ev.data };
  for (const [k, v] of Object.entries(data)) {
    if (v === null) { if (k in next) { diff.push(["del", k, next[k]]); delete next[k]; } continue; }
    if (!(k in next)) diff.push(["add", k, v]);
    else if (JSON.stringify(next[k]) !== JSON.stringify(v)) diff.push(["chg", k, v, next[k]]);
    next[k] = v;
  }
  return [next, diff];
}

function renderTimeline() {
  const tb = $("timeline").querySelector("tbody");
  tb.textContent = "";
  let s = {};
  state.events.forEach((ev, i) => {
    const [next, diff] = fold(s, ev);
    s = next;
    const tr = document.createElement("tr");
    tr.dataset.index = String(i);
    const cell = (text) => { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; };
    cell(ev.version);
    cell(ev.type);
    cell(ev.meta.principal || "—");
    cell(fmtTime(ev.recordedAt)).title = ev.recordedAt;
    cell(ev.occurredAt !== ev.recordedAt ? fmtTime(ev.occurredAt) : "");
    const d = cell("");
    d.className = "diff";
    for (const [kind, k, v, old] of diff) {
      const div = document.createElement("div");
      div.className = kind;
      div.textContent = kind === "add" ? "+ " + k + ": " + JSON.stringify(v)
        : kind === "del" ? "− " + k
        : "~ " + k + ": " + JSON.stringify(old) + " → " + JSON.stringify(v);
      d.appendChild(div);
    }
    const b = document.createElement("button");
    b.textContent = "verify";
    b.className = "verify";
    b.dataset.id = ev.id;
    b.addEventListener("click", () => verifyProof(ev));
    cell("").appendChild(b);
    tb.appendChild(tr);
  });
}

// renderState shows the state at the slider's event: asked of the server
// (GET /v1/streams/{stream}/state?at=T, the same fold as `strata state`), at that event's
// recording time. Only the answer to the latest move of the slider is shown.
let stateSeq = 0;
async function renderState() {
  const i = Number($("slider").value);
  const ev = state.events[i];
  for (const tr of $("timeline").querySelectorAll("tbody tr")) {
    const j = Number(tr.dataset.index);
    tr.classList.toggle("future", j > i);
    tr.classList.toggle("current", j === i);
  }
  $("slider-time").textContent = ev ? fmtTime(ev.recordedAt) : "";
  const seq = ++stateSeq;
  if (!ev) { $("state").textContent = "{}"; $("state-version").textContent = ""; return; }
  try {
    const q = new URLSearchParams({ at: ev.recordedAt });
    const s = await api("/v1/streams/" + encodeURIComponent(ev.stream) + "/state?" + q);
    if (seq !== stateSeq) return;
    $("state-version").textContent = "at version " + s.version;
    $("state").textContent = JSON.stringify(s.state, null, 2);
    $("state").dataset.version = String(s.version);
  } catch (e) { if (seq === stateSeq) showError(e); }
}

function fmtTime(t) { return t ? t.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC") : ""; }

// --- proofs: RFC 6962 / RFC 9162 hashing with WebCrypto ---

const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const concat = (...parts) => { const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let o = 0; for (const p of parts) { out.set(p, o); o += p.length; } return out; };
const sha256 = async (b) => new Uint8Array(await crypto.subtle.digest("SHA-256", b));
const leafHash = (leaf) => sha256(concat(Uint8Array.of(0), leaf));
const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

// rootFromInclusion is RFC 9162 §2.1.3.2: the root that the proof leads to from leaf hash h at
// index in a tree of size n, or null when the proof has the wrong length.
async function rootFromInclusion(index, n, h, proof) {
  if (index >= n) return null;
  let fn = BigInt(index), sn = BigInt(n) - 1n, r = h;
  for (const p of proof) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

// parseCheckpoint splits a signed note into its text (origin, size, root) and signature lines.
function parseCheckpoint(note) {
  const cut = note.indexOf("\n\n");
  if (cut < 0) throw new Error("the checkpoint is not a signed note");
  const text = note.slice(0, cut + 1);
  const lines = text.split("\n");
  const sigs = note.slice(cut + 2).split("\n").filter((l) => l.startsWith("\u2014 ")).map((l) => { const [, name, sig] = l.split(" "); return { name, sig: b64(sig) }; });
  return { text, origin: lines[0], size: BigInt(lines[1]), root: b64(lines[2]), sigs };
}

// verifySignature checks the log's Ed25519 signature on the checkpoint with a verifier key
// "name+hash+base64(0x01 || public key)". It returns "verified", or throws.
async function verifySignature(cp, vkey) {
  // name+hash+key: the base64 key may itself hold "+".
  const parts = vkey.trim().split("+");
  const [name, keyHash, keyB64] = [parts[0], parts[1] || "", parts.slice(2).join("+")];
  const key = b64(keyB64);
  if (key[0] !== 1 || key.length !== 33) throw new Error("not an Ed25519 note verifier key");
  if (name !== cp.origin) throw new Error("the key is for " + name + ", the checkpoint for " + cp.origin);
  const sig = cp.sigs.find((s) => s.name === name && hex(s.sig.slice(0, 4)) === keyHash.padStart(8, "0"));
  if (!sig) throw new Error("no signature by " + name);
  const pub = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
  const ok = await crypto.subtle.verify({ name: "Ed25519" }, pub, sig.sig.slice(4), new TextEncoder().encode(cp.text));
  if (!ok) throw new Error("the checkpoint signature does not verify");
  return "verified";
}

function badge(kind, text) {
  const b = $("proof-badge");
  b.className = "badge " + kind;
  b.textContent = text;
}

// decodeLeaf reads the canonical leaf encoding (docs/LEDGER.md, "Leaves"; ledger.Leaf.Append):
// u8 version, 16 ID, str stream, u64 version, str type, u32 schema, i64 occurred and recorded
// at (Unix microseconds), u32 count of metadata entries (str key, str value), u32 data length
// and the data. Strings are a u32 length and UTF-8.
function decodeLeaf(b) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength), utf8 = new TextDecoder("utf-8", { fatal: true });
  let o = 0;
  const need = (n) => { if (o + n > b.length) throw new Error("the leaf is cut short"); };
  const u32 = () => { need(4); const x = v.getUint32(o); o += 4; return x; };
  const bytes = (n) => { need(n); const x = b.subarray(o, o + n); o += n; return x; };
  const str = () => utf8.decode(bytes(u32()));
  need(17);
  const leaf = { format: b[0], id: hex(b.subarray(1, 17)) };
  o = 17;
  leaf.stream = str();
  need(8); leaf.version = v.getBigUint64(o); o += 8;
  leaf.type = str();
  leaf.schema = u32();
  need(16); leaf.occurred = v.getBigInt64(o); leaf.recorded = v.getBigInt64(o + 8); o += 16;
  leaf.meta = new Map();
  for (let n = u32(); n > 0; n--) { const k = str(); leaf.meta.set(k, str()); }
  leaf.data = bytes(u32());
  if (o !== b.length) throw new Error("the leaf has bytes after its data");
  return leaf;
}

// micros reads an RFC 3339 time as the API writes it (UTC, up to nanoseconds) as Unix
// microseconds, the leaf's unit.
function micros(t) {
  const m = /^(.*?)(?:\.(\d+))?Z$/.exec(t || "");
  if (!m) return null;
  const ms = Date.parse(m[1] + "Z");
  if (Number.isNaN(ms)) return null;
  return BigInt(ms) * 1000n + BigInt(((m[2] || "") + "000000").slice(0, 6));
}

// canonical is a JSON value's text with object keys sorted, to compare two parses.
function canonical(x) {
  if (Array.isArray(x)) return "[" + x.map(canonical).join(",") + "]";
  if (isObject(x)) return "{" + Object.keys(x).sort().map((k) => JSON.stringify(k) + ":" + canonical(x[k])).join(",") + "}";
  return JSON.stringify(x);
}

// leafDiffers returns what of the event shown differs from the sealed leaf, and notes what it
// could not compare: a payload with encrypted fields, which the server may show in clear while
// the leaf holds their ciphertext.
function leafDiffers(leaf, ev, notes) {
  const bad = [];
  if (leaf.stream !== ev.stream) bad.push("stream");
  if (leaf.version !== BigInt(ev.version)) bad.push("version");
  if (leaf.type !== ev.type) bad.push("type");
  if (leaf.schema !== (ev.schema < 0 || ev.schema > 0xfffffffe ? 0xffffffff : ev.schema)) bad.push("schema");
  if (leaf.occurred !== micros(ev.occurredAt)) bad.push("occurredAt");
  if (leaf.recorded !== micros(ev.recordedAt)) bad.push("recordedAt");
  const meta = Object.entries(ev.meta || {}).filter(([, val]) => val !== "");
  if (meta.length !== leaf.meta.size || meta.some(([k, val]) => leaf.meta.get(k) !== val)) bad.push("metadata");
  const text = new TextDecoder().decode(leaf.data);
  if (text.includes('"strata:enc:v1:')) {
    notes.push("payload not compared: the leaf holds the ciphertext of its personal data");
  } else {
    let sealed;
    try { sealed = text === "" ? {} : JSON.parse(text); } catch { sealed = undefined; }
    if (sealed === undefined || canonical(sealed) !== canonical(ev.data)) bad.push("data");
  }
  return bad;
}

async function verifyProof(ev) {
  badge("pending", "checking…");
  const lines = [];
  try {
    const p = await api("/v1/events/" + ev.id + "/proof");
    const leaf = b64(p.leaf);
    // The leaf is the event: version byte 1, its ID, and every field the ledger commits to,
    // each compared with what this page shows (a server could show one event and prove another).
    const l = decodeLeaf(leaf);
    if (l.format !== 1 || l.id !== ev.id.replaceAll("-", "")) throw new Error("the leaf is not this event");
    const notes = [], bad = leafDiffers(l, ev, notes);
    if (bad.length) throw new Error("the event shown differs from the sealed one in: " + bad.join(", "));
    lines.push("stream, version, type, schema, times, metadata" + (notes.length ? "" : " and payload") + " match the sealed leaf", ...notes);
    const cp = parseCheckpoint(p.checkpoint);
    const root = await rootFromInclusion(BigInt(p.index), cp.size, await leafHash(leaf), p.proof.map(b64));
    lines.push("leaf " + p.index + " of " + cp.size + " in " + cp.origin);
    if (!root || !equal(root, cp.root)) throw new Error("the inclusion proof does not lead to the checkpoint's root");
    lines.push("root " + hex(root).slice(0, 16) + "… matches the checkpoint");
    if (state.logKey) {
      lines.push("signature " + await verifySignature(cp, state.logKey));
      badge("ok", "VERIFIED");
    } else {
      // Without the log's key, the server could have made up the checkpoint with the proof.
      lines.push("signature not checked (no log public key given): the proof matches a checkpoint this server sent, which only the log's key can vouch for");
      badge("unsigned", "UNSIGNED");
    }
  } catch (e) {
    lines.push(String(e.message || e));
    badge("fail", "FAILED");
  }
  $("proof-detail").textContent = lines.join("\n");
}

// --- start ---

async function connect() {
  try {
    const who = await api("/v1/whoami");
    $("whoami").textContent = who.role + " of " + who.tenant;
    await loadStreams(false);
  } catch (e) { showError(e); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("apikey").value = state.key;
  $("logkey").value = state.logKey;
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    state.key = $("apikey").value.trim();
    state.logKey = $("logkey").value.trim();
    sessionStorage.setItem("strata.key", state.key);
    sessionStorage.setItem("strata.logkey", state.logKey);
    connect();
  });
  $("prefix").addEventListener("input", () => loadStreams(false));
  $("more-streams").addEventListener("click", () => loadStreams(true));
  $("slider").addEventListener("input", renderState);
  if (state.key) connect();
});
