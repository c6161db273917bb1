// The list page's strip: counts by event type and by result over time, as two small SVG bar
// charts (one stacked bar per time bucket) and the totals as text.
import { clear, el, svg } from "./common.js";

const WIDTH = 480;
const HEIGHT = 48;
const PALETTE = {
  quality_check: "#3b82f6", safety_alert: "#ef4444", inventory_count: "#10b981", custom: "#a855f7",
  operator_feedback: "#f59e0b", pass: "#16a34a", fail: "#dc2626",
};
const colour = (key) => PALETTE[key] || "#6b7280";

function bars(stats, group, id) {
  const buckets = stats.buckets;
  const highest = Math.max(1, ...buckets.map((b) => Object.values(b[group]).reduce((a, n) => a + n, 0)));
  const width = WIDTH / Math.max(1, buckets.length);
  const chart = svg("svg", { id, class: "bars", viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: WIDTH, height: HEIGHT, role: "img",
    "aria-label": `events by ${group === "byType" ? "type" : "result"} over time` });
  buckets.forEach((bucket, index) => {
    let top = HEIGHT;
    for (const [key, count] of Object.entries(bucket[group]).sort()) {
      const height = (count / highest) * (HEIGHT - 2);
      top -= height;
      chart.append(svg("rect", { x: index * width + 1, y: top, width: Math.max(1, width - 2), height, fill: colour(key),
        "data-key": key, "data-count": count, "data-start": bucket.start },
      svg("title", {}, `${bucket.start}: ${count} ${key}`)));
    }
  });
  return chart;
}

function totals(stats, group, id) {
  const entries = Object.entries(stats.totals[group]).sort();
  return el("p", { id, class: "totals" }, entries.length ? entries.map(([key, count]) =>
    el("span", { class: "total", "data-key": key, "data-count": count },
      el("span", { class: "swatch", "data-colour": key }), ` ${key} `, el("b", {}, String(count)))) : "—");
}

/** Draw the strip for a /viewer/api/stats answer into container. */
export function renderStats(container, stats) {
  clear(container);
  if (!stats.eventCount) {
    container.append(el("p", { class: "muted", id: "stats-empty" }, "No events match."));
    return;
  }
  const per = stats.bucketSeconds >= 3600 ? `${stats.bucketSeconds / 3600} h` : stats.bucketSeconds >= 60
    ? `${stats.bucketSeconds / 60} min` : `${stats.bucketSeconds} s`;
  container.append(
    el("div", { class: "strip" }, el("h3", {}, "By type"), bars(stats, "byType", "chart-by-type"), totals(stats, "byType", "totals-by-type")),
    el("div", { class: "strip" }, el("h3", {}, "By result"), bars(stats, "byResult", "chart-by-result"), totals(stats, "byResult", "totals-by-result")),
    el("p", { class: "muted" }, `${stats.eventCount} event(s), one bar per ${per}${stats.truncated ? " (newest events only)" : ""}.`),
  );
  for (const swatch of container.querySelectorAll(".swatch")) swatch.style.backgroundColor = colour(swatch.dataset.colour);
}
