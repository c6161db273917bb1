// GET /view/<useCaseId>?<filters> : the events, newest first, with every query filter as a
// form, cursor pages ("More"), live updates and a strip of counts over time.
import { fill, ApiError, api, clear, detectionClasses, el, eventUrl, formatTime, listUrl, setCrumbs, showFatal,
  startPage, summarize, viewPath } from "./common.js";
import { filterForm, parseFilters, showFieldError } from "./filters.js";
import { renderStats } from "./chart.js";

const LIVE_POLL_MS = 2000;
const LIVE_PAGE = 100;
const LIVE_MAX_PAGES = 10;  // at most 1,000 new events per poll; past that the page says to reload

function eventRow(useCaseId, event) {
  const images = (event.images || []).length;
  return el("tr", { "data-event-id": event.eventId, "data-event-type": event.eventType },
    el("td", { class: "mono" }, el("a", { href: eventUrl(useCaseId, event.eventId) }, formatTime(event.timestamp))),
    el("td", {}, el("span", { class: `tag type-${event.eventType}` }, event.eventType)),
    el("td", { "data-role": "summary" }, summarize(event)),
    el("td", { "data-role": "classes" }, detectionClasses(event).join(", ")),
    el("td", {}, event.deviceId || ""),
    el("td", {}, event.streamId || ""),
    el("td", { class: "num" }, images || ""));
}

startPage(async (main) => {
  const [useCaseId] = viewPath();
  const { state, body } = parseFilters(location.search);
  const [useCases, schema] = await Promise.all([
    api("GET", "/vision-events/use-cases?status=active"),
    api("GET", `/vision-events/custom-metadata-schema/${encodeURIComponent(useCaseId)}`),
  ]);
  const useCase = useCases.useCases.find((u) => u.id === useCaseId);
  const title = useCase ? useCase.name : useCaseId;
  setCrumbs(["use cases", "/"], [title, listUrl(useCaseId)]);
  document.title = `${title} · Vision Events viewer`;

  const schemaFields = Object.fromEntries(Object.entries(schema.fields || {}).map(([k, v]) => [k, v.types]));
  const form = filterForm(state, schemaFields, (search) => location.assign(listUrl(useCaseId, search)));
  const listError = el("p", { class: "error", id: "list-error", role: "alert", hidden: true });
  const tbody = el("tbody", { id: "event-rows" });
  const more = el("button", { type: "button", id: "more", hidden: true }, "More");
  const live = el("input", { type: "checkbox", id: "live", checked: true });
  const liveStatus = el("span", { id: "live-status", class: "muted" });
  const stats = el("section", { id: "stats", class: "stats" });
  const shown = el("span", { id: "shown-count" }, "0");
  fill(main,
    el("h1", {}, title),
    el("details", { id: "filter-panel", open: true }, el("summary", {}, "Filters"), form),
    stats,
    el("p", { class: "toolbar" }, el("label", {}, live, " live"), " ", liveStatus, " · ", shown, " shown"),
    listError,
    el("table", { id: "events", class: "grid" },
      el("thead", {}, el("tr", {}, ["Time (UTC)", "Type", "Summary", "Classes", "Device", "Stream", "Images"].map((h) => el("th", {}, h)))),
      tbody),
    more,
  );

  const seen = new Set();
  let newestMs = -Infinity;
  let cursor = null;
  let failed = false;

  function track(event) {
    seen.add(event.eventId);
    newestMs = Math.max(newestMs, Date.parse(event.timestamp));
    shown.textContent = String(seen.size);
  }

  function reportError(err) {
    if (!(err instanceof ApiError) || err.status === 401 || err.status === 403 || err.status === 404) throw err;
    failed = true;
    if (!(err.status === 400 && showFieldError(form, err.message))) {
      listError.textContent = `Error (${err.status}): ${err.message}`;
      listError.hidden = false;
    }
  }

  async function loadPage() {
    more.disabled = true;
    const page = await api("POST", "/vision-events/query", { useCaseId, ...body, ...(cursor ? { cursor } : {}) });
    for (const event of page.events) {
      if (seen.has(event.eventId)) continue;
      tbody.append(eventRow(useCaseId, event));
      track(event);
    }
    cursor = page.hasMore ? page.nextCursor : null;
    more.hidden = !page.hasMore;
    more.disabled = false;
  }

  async function loadStats() {
    renderStats(stats, await api("POST", "/viewer/api/stats", { useCaseId, ...body, limit: undefined }));
  }

  /**
   * New events matching the filters go on top, without a reload. A burst larger than one page
   * is followed through the cursor until the poll reaches events already shown.
   */
  async function poll() {
    const { limit, ...filters } = body;
    const fresh = [];
    let pageCursor = null;
    let capped = false;
    for (let pages = 0; pages < LIVE_MAX_PAGES; pages += 1) {
      const page = await api("POST", "/vision-events/query", { useCaseId, ...filters, limit: LIVE_PAGE,
        ...(pageCursor ? { cursor: pageCursor } : {}) });
      const newer = page.events.filter((e) => !seen.has(e.eventId) && Date.parse(e.timestamp) >= newestMs);
      fresh.push(...newer);
      if (!page.hasMore || newer.length < page.events.length) break;
      pageCursor = page.nextCursor;
      capped = pages === LIVE_MAX_PAGES - 1;
    }
    if (fresh.length) document.getElementById("no-events")?.remove();
    for (const event of fresh.reverse()) {
      const row = eventRow(useCaseId, event);
      row.classList.add("live-new");
      tbody.prepend(row);
      track(event);
    }
    if (fresh.length) await loadStats();
    liveStatus.textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC${fresh.length ? `, ${fresh.length} new` : ""}`
      + (capped ? `; more than ${LIVE_PAGE * LIVE_MAX_PAGES} arrived at once: reload to see them all` : "");
  }

  function scheduleLive() {
    setTimeout(async () => {
      if (live.checked && !failed && document.visibilityState !== "hidden") {
        try {
          await poll();
        } catch (err) {
          if (err instanceof ApiError && err.status === 401) return showFatal(main, err);
          liveStatus.textContent = `live paused: ${err.message}`;
        }
      }
      scheduleLive();
    }, LIVE_POLL_MS);
  }

  more.addEventListener("click", () => loadPage().catch((err) => {
    try { reportError(err); } catch (fatal) { showFatal(main, fatal); }
  }));
  try {
    await loadPage();
    await loadStats();
  } catch (err) {
    reportError(err);
  }
  if (!failed && seen.size === 0) tbody.append(el("tr", { id: "no-events" }, el("td", { colspan: 7, class: "muted" }, "No events match.")));
  main.dataset.ready = "true";
  scheduleLive();
});
