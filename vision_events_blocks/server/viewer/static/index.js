// GET / : the use cases with their event counts (active first, then archived).
import { fill, api, clear, el, listUrl, setCrumbs, startPage } from "./common.js";

function useCaseTable(useCases, id) {
  if (!useCases.length) return el("p", { class: "muted", id: `${id}-empty` }, "None.");
  return el("table", { id, class: "grid" },
    el("thead", {}, el("tr", {}, el("th", {}, "Use case"), el("th", {}, "Id"), el("th", { class: "num" }, "Events"), el("th", {}, "Created"))),
    el("tbody", {}, useCases.map((u) => el("tr", { "data-use-case-id": u.id },
      el("td", {}, el("a", { href: listUrl(u.id) }, u.name)),
      el("td", { class: "mono" }, u.id),
      el("td", { class: "num", "data-role": "event-count" }, u.eventCount ?? ""),
      el("td", {}, u.createdAt || "")))));
}

startPage(async (main) => {
  setCrumbs(["use cases", null]);
  const [active, archived] = await Promise.all([
    api("GET", "/vision-events/use-cases?status=active"),
    api("GET", "/vision-events/use-cases?status=inactive"),
  ]);
  fill(main,
    el("h1", {}, "Use cases"),
    el("p", { class: "muted" }, `Events are kept ${active.lookbackDays} days.`),
    useCaseTable(active.useCases, "use-cases"),
    archived.useCases.length ? el("h2", {}, "Archived") : null,
    archived.useCases.length ? useCaseTable(archived.useCases, "archived-use-cases") : null,
  );
});
