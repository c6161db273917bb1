// Shared by the viewer's pages: the API key, API calls, safe DOM building, links.
//
// Security rules kept here so that every page follows them:
// * the key lives in sessionStorage only; a key given once as #key=... is moved there and
//   removed from the address bar; it is sent only as "Authorization: Bearer";
// * event data is untrusted: every string reaches the page through text nodes
//   (el() never sets innerHTML), attributes are set with setAttribute on fixed names.

const KEY_STORAGE = "visionEventsViewerKey";
const SVG_NS = "http://www.w3.org/2000/svg";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Move a key given as "#key=..." into sessionStorage and out of the URL and history. */
export function takeKeyFromFragment() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const key = fragment.get("key");
  if (key !== null) {
    if (key.trim()) sessionStorage.setItem(KEY_STORAGE, key.trim());
    history.replaceState(null, "", location.pathname + location.search);
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

/** Call the API with the session's key; resolves to the JSON body, rejects with ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", cache: "no-store", redirect: "error",
    });
  } catch (err) {
    throw new ApiError(0, `The server did not answer (${err.message})`);
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch (err) {
    payload = null;
  }
  if (!response.ok) {
    const message = payload && typeof payload.error === "string" ? payload.error : response.statusText;
    throw new ApiError(response.status, message);
  }
  return payload;
}

/** el("a", {href: "/x", class: "c"}, "text", child) -- children as text nodes or elements. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

function setAttributes(node, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** Replace node's children (null / false children are left out, never shown as text). */
export function fill(node, ...children) {
  clear(node);
  append(node, children);
  return node;
}

/** Links a person can share: ids are path segments, always encoded. */
export function listUrl(useCaseId, search = "") {
  return `/view/${encodeURIComponent(useCaseId)}${search}`;
}

export function eventUrl(useCaseId, eventId) {
  return `/view/${encodeURIComponent(useCaseId)}/${encodeURIComponent(eventId)}`;
}

/** The decoded path segments after /view/ (the raw pathname keeps %2F inside an id). */
export function viewPath() {
  return location.pathname.split("/").slice(2).filter((part) => part !== "").map(decodeURIComponent);
}

export function formatTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return String(iso);
  return when.toISOString().replace("T", " ").replace(/\.(\d{3})Z$/, ".$1 UTC");
}

export function formatValue(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** One line about an event: the verdict, the alert, the count, the value or the feedback. */
export function summarize(event) {
  const data = event.eventData || {};
  switch (event.eventType) {
    case "quality_check": return data.result ? `result: ${data.result}` : "";
    case "safety_alert": return [data.alertType, data.severity && `(${data.severity})`, data.description].filter(Boolean).join(" ");
    case "inventory_count": return [`${data.itemCount ?? "?"} ${data.itemType || "items"}`, data.location && `at ${data.location}`].filter(Boolean).join(" ");
    case "operator_feedback": return [data.feedback, data.relatedEventId && `on ${data.relatedEventId}`].filter(Boolean).join(" ");
    default: return data.value !== undefined ? String(data.value) : "";
  }
}

/** Every detection class on the event's images, once each. */
export function detectionClasses(event) {
  const classes = new Set();
  for (const image of event.images || []) {
    for (const list of [image.objectDetections, image.classifications, image.instanceSegmentations, image.keypoints]) {
      for (const annotation of list || []) classes.add(annotation.class);
    }
  }
  return [...classes];
}

/** A random UUID v4 (crypto.randomUUID needs a secure context; a LAN address may not be one). */
export function uuid4() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function keyForm(message) {
  const input = el("input", { type: "password", id: "api-key", name: "api-key", autocomplete: "off", required: true, size: 40 });
  const form = el("form", { id: "key-form", class: "card" },
    el("h2", {}, "API key"),
    message ? el("p", { class: "error", id: "key-error", role: "alert" }, message) : null,
    el("p", { class: "muted" }, "The viewer calls the Vision Events API with this key (read to look, write to give feedback). ",
      "It stays in this tab's session storage and is sent only in the Authorization header."),
    el("label", { for: "api-key" }, "Key "), input, " ", el("button", { type: "submit" }, "Use this key"));
  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, input.value.trim());
    location.reload();
  });
  return form;
}

export function setCrumbs(...links) {
  const nav = clear(document.getElementById("crumbs"));
  for (const [text, href] of links) {
    nav.append(" / ");
    nav.append(href ? el("a", { href }, text) : el("span", {}, text));
  }
}

/**
 * Start a page: take a #key=..., ask for a key when there is none, then run render(main).
 * A refused key (401) brings the key form back with the server's message.
 */
export function startPage(render) {
  takeKeyFromFragment();
  const main = document.getElementById("main");
  const status = clear(document.getElementById("key-status"));
  if (!apiKey()) {
    clear(main).append(keyForm(null));
    return;
  }
  const forget = el("button", { type: "button", id: "forget-key", class: "link" }, "forget key");
  forget.addEventListener("click", () => { forgetKey(); location.reload(); });
  status.append(forget);
  render(main).catch((err) => showFatal(main, err));
}

export function showFatal(main, err) {
  if (err instanceof ApiError && err.status === 401) {
    forgetKey();
    clear(main).append(keyForm(`The server refused this key (401): ${err.message}`));
    return;
  }
  const status = err instanceof ApiError ? ` (${err.status})` : "";
  clear(main).append(el("p", { class: "error", id: "page-error", role: "alert" }, `Error${status}: ${err.message}`));
}
