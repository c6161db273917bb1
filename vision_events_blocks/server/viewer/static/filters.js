// The list page's filters: query string <-> query API body <-> form.
//
// Parameter names are the query API's (seed 004), so a filtered view is a shareable link:
//   startTime, endTime                      ISO 8601
//   eventTypes=a&eventTypes=b               (a comma-separated list works too)
//   deviceId=X&deviceId.operator=neq        streamId, workflowId, externalId alike (eq, neq)
//   detectionClass=a,b&detectionClass.operator=in    (eq, neq, in, not_in)
//   imageCount=2&imageCount.operator=gte     (eq, neq, gt, gte, lt, lte)
//   hasWarnings=true|false
//   customMetadataFilters.0.field=line&customMetadataFilters.0.type=string&
//     customMetadataFilters.0.operator=eq&customMetadataFilters.0.value=3
//   eventFieldFilters.0.column=result&eventFieldFilters.0.operator=eq&eventFieldFilters.0.value=fail
//   limit=50
// Values are passed on as typed as the form allows; the server judges them, and its error
// is shown next to the field it names.
import { el } from "./common.js";

export const EVENT_TYPES = ["quality_check", "inventory_count", "safety_alert", "custom", "operator_feedback"];
export const CONTEXT_FIELDS = [["deviceId", "Device"], ["streamId", "Stream"], ["workflowId", "Workflow"], ["externalId", "External id"]];
const EQUALITY = ["eq", "neq"];
const LIST_OPERATORS = ["eq", "neq", "in", "not_in"];
const NUMBER_OPERATORS = ["eq", "neq", "gt", "gte", "lt", "lte"];
const ALL_OPERATORS = ["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in"];
const METADATA_TYPES = ["string", "number", "boolean"];
const EVENT_FIELD_COLUMNS = ["result", "location", "item_count", "item_type", "alert_type", "severity", "feedback"];
// The body's field names, in the order a server message is searched for the field it is about.
export const FILTER_FIELDS = ["customMetadataFilters", "eventFieldFilters", "detectionClass", "imageCount", "hasWarnings",
  "eventTypes", "deviceId", "streamId", "workflowId", "externalId", "startTime", "endTime", "limit", "cursor"];

const isList = (operator) => operator === "in" || operator === "not_in";
const splitList = (text) => text.split(",").map((s) => s.trim()).filter((s) => s !== "");

function asNumber(text) {
  const trimmed = String(text).trim();
  return trimmed !== "" && Number.isFinite(Number(trimmed)) ? Number(trimmed) : text;
}

function typed(text, type) {
  if (type === "number") return asNumber(text);
  if (type === "boolean") return text === "true" ? true : text === "false" ? false : text;
  return text;
}

function typedValue(text, operator, type) {
  return isList(operator) ? splitList(text).map((item) => typed(item, type)) : typed(text, type);
}

/** Rows of an indexed group ("customMetadataFilters.0.field" ...), in index order. */
function indexedRows(params, group) {
  const rows = new Map();
  for (const [name, value] of params) {
    const match = new RegExp(`^${group}\\.(\\d+)\\.(\\w+)$`).exec(name);
    if (!match) continue;
    const index = Number(match[1]);
    if (!rows.has(index)) rows.set(index, {});
    rows.get(index)[match[2]] = value;
  }
  return [...rows.keys()].sort((a, b) => a - b).map((k) => rows.get(k));
}

/** The query string -> {state (what the form shows), body (the query API's filters)}. */
export function parseFilters(search) {
  const params = new URLSearchParams(search);
  const state = { eventTypes: params.getAll("eventTypes").flatMap(splitList) };
  const body = {};
  for (const name of ["startTime", "endTime"]) {
    state[name] = params.get(name) || "";
    if (state[name]) body[name] = state[name];
  }
  if (state.eventTypes.length) body.eventTypes = state.eventTypes;
  for (const [name] of CONTEXT_FIELDS) {
    state[name] = { value: params.get(name) || "", operator: params.get(`${name}.operator`) || "eq" };
    if (state[name].value) body[name] = { operator: state[name].operator, value: state[name].value };
  }
  state.detectionClass = { value: params.get("detectionClass") || "", operator: params.get("detectionClass.operator") || "eq" };
  if (state.detectionClass.value) {
    const { operator, value } = state.detectionClass;
    body.detectionClass = { operator, value: isList(operator) ? splitList(value) : value };
  }
  state.imageCount = { value: params.get("imageCount") || "", operator: params.get("imageCount.operator") || "eq" };
  if (state.imageCount.value) body.imageCount = { operator: state.imageCount.operator, value: asNumber(state.imageCount.value) };
  state.hasWarnings = params.get("hasWarnings") || "";
  if (state.hasWarnings) body.hasWarnings = typed(state.hasWarnings, "boolean");
  state.customMetadataFilters = indexedRows(params, "customMetadataFilters");
  const metadata = state.customMetadataFilters.filter((row) => row.field);
  if (metadata.length) {
    body.customMetadataFilters = metadata.map((row) => ({
      field: row.field, type: row.type || "string", operator: row.operator || "eq",
      value: typedValue(row.value ?? "", row.operator || "eq", row.type || "string"),
    }));
  }
  state.eventFieldFilters = indexedRows(params, "eventFieldFilters");
  const fields = state.eventFieldFilters.filter((row) => row.column);
  if (fields.length) {
    body.eventFieldFilters = fields.map((row) => ({
      column: row.column, operator: row.operator || "eq",
      value: typedValue(row.value ?? "", row.operator || "eq", row.column === "item_count" ? "number" : "string"),
    }));
  }
  state.limit = params.get("limit") || "";
  if (state.limit) body.limit = asNumber(state.limit);
  return { state, body };
}

/** The form's non-empty fields -> a query string (empty filter rows dropped, rows renumbered). */
export function formToSearch(form) {
  const data = new FormData(form);
  const out = new URLSearchParams();
  for (const name of ["startTime", "endTime"]) if (data.get(name)) out.append(name, data.get(name).trim());
  for (const type of data.getAll("eventTypes")) out.append("eventTypes", type);
  for (const name of [...CONTEXT_FIELDS.map(([n]) => n), "detectionClass", "imageCount"]) {
    if (!data.get(name)) continue;
    out.append(name, data.get(name));
    if (data.get(`${name}.operator`) !== "eq") out.append(`${name}.operator`, data.get(`${name}.operator`));
  }
  if (data.get("hasWarnings")) out.append("hasWarnings", data.get("hasWarnings"));
  for (const [group, key, parts] of [["customMetadataFilters", "field", ["field", "type", "operator", "value"]],
    ["eventFieldFilters", "column", ["column", "operator", "value"]]]) {
    const rows = form.querySelectorAll(`[data-group="${group}"]`);
    let index = 0;
    for (const row of rows) {
      const values = Object.fromEntries(parts.map((p) => [p, row.querySelector(`[data-part="${p}"]`).value]));
      if (!values[key]) continue;
      for (const part of parts) out.append(`${group}.${index}.${part}`, values[part]);
      index += 1;
    }
  }
  if (data.get("limit")) out.append("limit", data.get("limit"));
  const text = out.toString();
  return text ? `?${text}` : "";
}

function select(name, options, chosen, attrs = {}, emptyLabel = "any") {
  return el("select", { name, ...attrs }, options.map((o) => el("option", { value: o, selected: o === chosen }, o || emptyLabel)));
}

function fieldset(errorFor, legend, ...children) {
  return el("fieldset", { "data-field": errorFor }, el("legend", {}, legend), ...children,
    el("p", { class: "field-error", "data-error-for": errorFor, role: "alert", hidden: true }));
}

function metadataRow(row, schemaFields) {
  const field = el("input", { "data-part": "field", "aria-label": "metadata field", placeholder: "field", list: "metadata-fields", value: row.field || "" });
  const type = select("", METADATA_TYPES, row.type || (schemaFields[row.field] || ["string"])[0], { "data-part": "type", "aria-label": "metadata type" });
  // A field the schema knows takes its (first) recorded type; the person may still change it.
  field.addEventListener("change", () => { if (schemaFields[field.value]) type.value = schemaFields[field.value][0]; });
  return el("div", { class: "filter-row", "data-group": "customMetadataFilters" }, field, type,
    select("", ALL_OPERATORS, row.operator || "eq", { "data-part": "operator", "aria-label": "metadata operator" }),
    el("input", { "data-part": "value", "aria-label": "metadata value", placeholder: "value (a,b for in)", value: row.value || "" }));
}

function eventFieldRow(row) {
  return el("div", { class: "filter-row", "data-group": "eventFieldFilters" },
    select("", ["", ...EVENT_FIELD_COLUMNS], row.column || "", { "data-part": "column", "aria-label": "event field" }, "field"),
    select("", ALL_OPERATORS, row.operator || "eq", { "data-part": "operator", "aria-label": "event field operator" }),
    el("input", { "data-part": "value", "aria-label": "event field value", placeholder: "value (a,b for in)", value: row.value || "" }));
}

/** The filter form, filled from the query string's state; onSubmit(search) navigates. */
export function filterForm(state, schemaFields, onSubmit) {
  const metadataRows = el("div", { id: "metadata-rows" }, [...state.customMetadataFilters, {}].map((r) => metadataRow(r, schemaFields)));
  const fieldRows = el("div", { id: "event-field-rows" }, [...state.eventFieldFilters, {}].map(eventFieldRow));
  const addMetadata = el("button", { type: "button", id: "add-metadata-filter" }, "+ metadata filter");
  addMetadata.addEventListener("click", () => metadataRows.append(metadataRow({}, schemaFields)));
  const addField = el("button", { type: "button", id: "add-event-field-filter" }, "+ event field filter");
  addField.addEventListener("click", () => fieldRows.append(eventFieldRow({})));
  const form = el("form", { id: "filters", class: "filters" },
    fieldset("startTime", "From (ISO 8601)", el("input", { name: "startTime", value: state.startTime, placeholder: "2026-01-15T10:00:00Z", size: 24 })),
    fieldset("endTime", "To (ISO 8601)", el("input", { name: "endTime", value: state.endTime, placeholder: "2026-01-15T12:00:00Z", size: 24 })),
    fieldset("eventTypes", "Event types", EVENT_TYPES.map((t) => el("label", { class: "check" },
      el("input", { type: "checkbox", name: "eventTypes", value: t, checked: state.eventTypes.includes(t) }), ` ${t}`))),
    CONTEXT_FIELDS.map(([name, label]) => fieldset(name, label,
      select(`${name}.operator`, EQUALITY, state[name].operator, { "aria-label": `${label} operator` }),
      el("input", { name, value: state[name].value, "aria-label": label, size: 16 }))),
    fieldset("detectionClass", "Detection class",
      select("detectionClass.operator", LIST_OPERATORS, state.detectionClass.operator, { "aria-label": "detection class operator" }),
      el("input", { name: "detectionClass", value: state.detectionClass.value, placeholder: "class (a,b for in)", "aria-label": "detection class", size: 16 })),
    fieldset("imageCount", "Image count",
      select("imageCount.operator", NUMBER_OPERATORS, state.imageCount.operator, { "aria-label": "image count operator" }),
      el("input", { name: "imageCount", value: state.imageCount.value, "aria-label": "image count", size: 4 })),
    fieldset("hasWarnings", "Warnings", select("hasWarnings", ["", "true", "false"], state.hasWarnings, { "aria-label": "has warnings" })),
    fieldset("customMetadataFilters", "Custom metadata", metadataRows, addMetadata,
      el("datalist", { id: "metadata-fields" }, Object.keys(schemaFields).map((f) => el("option", { value: f })))),
    fieldset("eventFieldFilters", "Event fields", fieldRows, addField),
    fieldset("limit", "Page size", el("input", { name: "limit", value: state.limit, placeholder: "50", size: 5, "aria-label": "page size" })),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "apply-filters" }, "Apply"), " ",
      el("a", { href: "?", id: "clear-filters" }, "clear")));
  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    onSubmit(formToSearch(form));
  });
  return form;
}

/** Show a server message next to the field it names (or return false when it names none). */
export function showFieldError(form, message) {
  let best = null;
  for (const field of FILTER_FIELDS) {
    const at = message.search(new RegExp(`\\b${field}\\b`));
    if (at >= 0 && (best === null || at < best.at)) best = { field, at };
  }
  const slot = best && form.querySelector(`[data-error-for="${best.field}"]`);
  if (!slot) return false;
  slot.textContent = message;
  slot.hidden = false;
  slot.closest("fieldset").classList.add("invalid");
  return true;
}
