// GET /view/<useCaseId>/<eventId> : one event -- images with overlays and a confidence
// threshold, its data, metadata, context ids, warnings, related operator feedback, and a form
// that writes an operator_feedback event through the API (needs a write-scoped key).
import { fill, ApiError, api, clear, el, eventUrl, formatTime, formatValue, listUrl, setCrumbs, startPage, summarize,
  uuid4, viewPath } from "./common.js";
import { applyThreshold, imageFigure } from "./overlay.js";

const FEEDBACK_CHOICES = ["correct", "incorrect", "inconclusive"];

function definitionList(id, entries) {
  const shown = entries.filter(([, value]) => value !== undefined && value !== null && value !== "");
  if (!shown.length) return el("p", { id, class: "muted" }, "None.");
  return el("dl", { id, class: "pairs" }, shown.map(([key, value]) => [
    el("dt", {}, key), el("dd", { "data-key": key }, formatValue(value))]));
}

function feedbackList(useCaseId, feedback) {
  if (!feedback.length) return el("p", { id: "feedback-list", class: "muted" }, "No operator feedback yet.");
  return el("ul", { id: "feedback-list" }, feedback.map((f) => el("li", { "data-event-id": f.eventId, "data-feedback": f.eventData.feedback },
    el("span", { class: `tag feedback-${f.eventData.feedback}` }, f.eventData.feedback), " ",
    el("a", { href: eventUrl(useCaseId, f.eventId) }, formatTime(f.timestamp)),
    f.comment ? [" — ", el("span", { class: "comment" }, f.comment)] : "")));
}

function warnings(event) {
  const items = [];
  for (const [index, image] of (event.images || []).entries()) {
    if (image.sourceId && !image.url) items.push(`images[${index}].sourceId ${image.sourceId} was never uploaded to this server`);
    if (image.inputSourceId && !image.inputUrl) items.push(`images[${index}].inputSourceId ${image.inputSourceId} was never uploaded to this server`);
  }
  if (event.customMetadata && event.customMetadata.ve_images_shed) items.push("the sender shed this event's images under memory pressure (ve_images_shed)");
  if (event.hasWarnings && !items.length) items.push("the server flagged this event with ingestion warnings");
  if (!items.length) return el("p", { id: "warnings", class: "muted" }, "None.");
  return el("ul", { id: "warnings", class: "error" }, items.map((w) => el("li", {}, w)));
}

function feedbackForm(useCaseId, eventId, onSaved) {
  const status = el("p", { id: "feedback-status", role: "status" });
  const comment = el("textarea", { id: "feedback-comment", name: "comment", rows: 2, cols: 50, maxlength: 1000,
    placeholder: "comment (optional)" });
  const form = el("form", { id: "feedback-form", class: "card" },
    el("h3", {}, "Give feedback"),
    el("div", {}, FEEDBACK_CHOICES.map((choice) => el("label", { class: "check" },
      el("input", { type: "radio", name: "feedback", value: choice, required: true, id: `feedback-${choice}` }), ` ${choice} `))),
    comment, el("div", {}, el("button", { type: "submit", id: "send-feedback" }, "Send feedback")), status);
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const choice = new FormData(form).get("feedback");
    const feedback = {
      eventId: uuid4(), eventType: "operator_feedback", useCaseId, timestamp: new Date().toISOString(),
      eventData: { relatedEventId: eventId, feedback: choice },
    };
    if (comment.value.trim()) feedback.comment = comment.value.trim();
    status.className = "";
    status.textContent = "Sending…";
    try {
      await api("POST", "/vision-events", feedback);
      status.textContent = `Feedback "${choice}" recorded as event ${feedback.eventId}.`;
      status.className = "ok";
      status.dataset.feedbackEventId = feedback.eventId;
      form.reset();
      await onSaved();
    } catch (err) {
      status.className = "error";
      status.textContent = err instanceof ApiError && err.status === 403
        ? `This key may not write events (403: ${err.message}). Feedback needs a key with vision-events:write or device:update.`
        : `Feedback not recorded (${err.status ?? "error"}): ${err.message}`;
    }
  });
  return form;
}

startPage(async (main) => {
  const [useCaseId, eventId] = viewPath();
  const path = `/viewer/api/use-cases/${encodeURIComponent(useCaseId)}/events/${encodeURIComponent(eventId)}`;
  const { useCase, event, feedback } = await api("GET", path);
  setCrumbs(["use cases", "/"], [useCase.name, listUrl(useCaseId)], [eventId, null]);
  document.title = `${event.eventType} ${eventId} · Vision Events viewer`;

  const params = new URLSearchParams(location.search);
  const initial = Math.min(1, Math.max(0, Number(params.get("minConfidence")) || 0));
  const slider = el("input", { type: "range", id: "threshold", min: 0, max: 1, step: 0.01, value: initial, "aria-label": "confidence threshold" });
  const thresholdValue = el("output", { id: "threshold-value", for: "threshold" }, initial.toFixed(2));
  const visibleCount = el("span", { id: "visible-count" }, "0");
  const figures = el("div", { id: "images", class: "images" });
  for (const [index, image] of (event.images || []).entries()) figures.append(await imageFigure(image, index));
  if (!(event.images || []).length) figures.append(el("p", { class: "muted" }, "This event has no images."));

  function threshold() {
    const value = Number(slider.value);
    thresholdValue.textContent = value.toFixed(2);
    visibleCount.textContent = String(applyThreshold(figures, value));
    const next = new URLSearchParams(location.search);
    if (value > 0) next.set("minConfidence", value.toFixed(2)); else next.delete("minConfidence");
    history.replaceState(null, "", location.pathname + (next.toString() ? `?${next}` : ""));
  }
  slider.addEventListener("input", threshold);

  const feedbackSlot = el("div", {}, feedbackList(useCaseId, feedback));
  async function reloadFeedback() {
    const fresh = await api("GET", path);
    clear(feedbackSlot).append(feedbackList(useCaseId, fresh.feedback));
  }
  const data = event.eventData || {};
  const related = event.eventType === "operator_feedback" && data.relatedEventId
    ? el("p", {}, "About event ", el("a", { href: eventUrl(useCaseId, data.relatedEventId), id: "related-event" }, data.relatedEventId))
    : null;

  fill(main,
    el("h1", {}, el("span", { class: `tag type-${event.eventType}`, id: "event-type" }, event.eventType), " ",
      el("span", { id: "event-summary" }, summarize(event))),
    el("p", { class: "muted" }, formatTime(event.timestamp)),
    related,
    el("section", { class: "card" },
      el("p", { class: "toolbar" }, el("label", { for: "threshold" }, "Confidence ≥ "), slider, " ", thresholdValue,
        " · ", visibleCount, " annotation(s) shown"),
      figures),
    el("div", { class: "columns" },
      el("section", { class: "card" }, el("h2", {}, "Event data"), definitionList("event-data", Object.entries(data)),
        event.comment ? [el("h3", {}, "Comment"), el("p", { id: "event-comment" }, event.comment)] : null,
        el("h2", {}, "Context"), definitionList("context-ids", [["eventId", event.eventId], ["useCaseId", event.useCaseId],
          ["deviceId", event.deviceId], ["streamId", event.streamId], ["workflowId", event.workflowId],
          ["externalId", data.externalId], ["timestamp", event.timestamp]])),
      el("section", { class: "card" }, el("h2", {}, "Custom metadata"), definitionList("custom-metadata", Object.entries(event.customMetadata || {})),
        el("h2", {}, "Warnings"), warnings(event))),
    el("section", { class: "card", id: "feedback" }, el("h2", {}, "Operator feedback"), feedbackSlot,
      feedbackForm(useCaseId, eventId, reloadFeedback)),
  );
  threshold();
  main.dataset.ready = "true";
});
