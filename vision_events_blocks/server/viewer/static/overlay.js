// One event image with its annotations drawn over it as SVG: one <g class="annotation"> per
// annotation, carrying data-kind (box, polygon, keypoints, classification), data-class and
// data-confidence, so overlays stay sharp when zoomed and tests can count them.
//
// Annotations are in the pixels of the input image (spec §8), so they are drawn over
// inputSourceId's image when there is one, else over sourceId's.
import { el, svg } from "./common.js";

// COCO's 17-keypoint person skeleton (0-based ids), drawn when an instance's keypoint ids
// are those of a COCO pose model; an annotation's own "skeleton" ([[id, id], ...]) wins.
const COCO_SKELETON = [[15, 13], [13, 11], [16, 14], [14, 12], [11, 12], [5, 11], [6, 12], [5, 6], [5, 7], [6, 8],
  [7, 9], [8, 10], [1, 2], [0, 1], [0, 2], [1, 3], [2, 4], [3, 5], [4, 6]];
const COCO_MIN_POINTS = 12;

const CLASS_COLOURS = ["#ef4444", "#f59e0b", "#22c55e", "#06b6d4", "#3b82f6", "#a855f7", "#ec4899", "#84cc16", "#f97316", "#14b8a6"];

function classColour(name) {
  let hash = 7;
  for (const char of String(name)) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return CLASS_COLOURS[hash % CLASS_COLOURS.length];
}

function label(annotation) {
  return `${annotation.class} ${Number(annotation.confidence).toFixed(2)}`;
}

function group(kind, annotation, ...children) {
  return svg("g", { class: "annotation", "data-kind": kind, "data-class": annotation.class,
    "data-confidence": annotation.confidence, stroke: classColour(annotation.class) },
  svg("title", {}, `${kind}: ${label(annotation)}`), ...children);
}

function caption(x, y, annotation, size) {
  return svg("text", { x, y: Math.max(size, y - size * 0.3), class: "label", "font-size": size, fill: classColour(annotation.class) },
    label(annotation));
}

function box(annotation, dashed) {
  return svg("rect", { x: annotation.x - annotation.width / 2, y: annotation.y - annotation.height / 2,
    width: annotation.width, height: annotation.height, class: dashed ? "shape dashed" : "shape", "vector-effect": "non-scaling-stroke" });
}

function skeletonOf(annotation) {
  if (Array.isArray(annotation.skeleton)) return annotation.skeleton;
  const ids = new Set((annotation.keypoints || []).map((p) => p.id));
  return ids.size >= COCO_MIN_POINTS && [...ids].every((id) => id <= 16) ? COCO_SKELETON : [];
}

function keypointShapes(annotation, size) {
  const byId = new Map((annotation.keypoints || []).map((p) => [p.id, p]));
  const bones = skeletonOf(annotation).filter(([a, b]) => byId.has(a) && byId.has(b)).map(([a, b]) =>
    svg("line", { x1: byId.get(a).x, y1: byId.get(a).y, x2: byId.get(b).x, y2: byId.get(b).y, class: "bone",
      "vector-effect": "non-scaling-stroke" }));
  const points = [...byId.values()].map((p) => svg("circle", { cx: p.x, cy: p.y, r: size / 4, class: "joint",
    fill: classColour(annotation.class), "data-keypoint-id": p.id }));
  return [...bones, ...points];
}

/** Natural size of the image at url, or null when it cannot be loaded. */
async function naturalSize(url) {
  if (!url) return null;
  const probe = new Image();
  probe.src = url;
  try {
    await probe.decode();
    return { width: probe.naturalWidth, height: probe.naturalHeight };
  } catch (err) {
    return null;
  }
}

function annotationExtent(image) {
  let width = 1;
  let height = 1;
  for (const list of [image.objectDetections, image.instanceSegmentations, image.keypoints]) {
    for (const a of list || []) {
      width = Math.max(width, a.x + a.width / 2, ...(a.points || []).map((p) => p[0]), ...(a.keypoints || []).map((p) => p.x));
      height = Math.max(height, a.y + a.height / 2, ...(a.points || []).map((p) => p[1]), ...(a.keypoints || []).map((p) => p.y));
    }
  }
  return { width: Math.ceil(width * 1.05), height: Math.ceil(height * 1.05) };
}

/** A <figure> for image number index of an event, its overlays drawn. */
export async function imageFigure(image, index) {
  const url = image.inputUrl || image.url;
  const loaded = await naturalSize(url);
  const { width, height } = loaded || annotationExtent(image);
  const size = Math.max(10, Math.round(Math.max(width, height) / 45));
  const drawing = svg("svg", { class: "overlay", viewBox: `0 0 ${width} ${height}`, "data-image-index": index,
    preserveAspectRatio: "xMidYMid meet", role: "img", "aria-label": `image ${index + 1} with annotations` });
  drawing.append(loaded ? svg("image", { href: url, x: 0, y: 0, width, height })
    : svg("rect", { x: 0, y: 0, width, height, class: "missing-image" }));
  for (const a of image.instanceSegmentations || []) {
    const [x, y] = [a.x - a.width / 2, a.y - a.height / 2];
    drawing.append(group("polygon", a, svg("polygon", { points: a.points.map((p) => p.join(",")).join(" "), class: "shape filled",
      fill: classColour(a.class), "vector-effect": "non-scaling-stroke" }), caption(x, y, a, size)));
  }
  for (const a of image.objectDetections || []) {
    drawing.append(group("box", a, box(a, false), caption(a.x - a.width / 2, a.y - a.height / 2, a, size)));
  }
  for (const a of image.keypoints || []) {
    drawing.append(group("keypoints", a, box(a, true), ...keypointShapes(a, size), caption(a.x - a.width / 2, a.y - a.height / 2, a, size)));
  }
  (image.classifications || []).forEach((a, line) => {
    drawing.append(group("classification", a, svg("text", { x: size / 2, y: size * (line + 1.2), class: "label classification",
      "font-size": size, fill: classColour(a.class) }, label(a))));
  });
  const ids = [image.sourceId && `sourceId ${image.sourceId}`, image.inputSourceId && `inputSourceId ${image.inputSourceId}`];
  return el("figure", { class: "event-image", "data-image-index": index }, drawing,
    el("figcaption", {}, image.label ? `${image.label} · ` : "", ids.filter(Boolean).join(" · "),
      loaded ? "" : el("span", { class: "error" }, " · image not available on this server"),
      image.url && image.inputUrl ? [" · ", el("a", { href: image.url, target: "_blank", rel: "noopener noreferrer" }, "visualisation")] : ""));
}

/** Hide every annotation under the threshold; returns how many stay visible. */
export function applyThreshold(root, threshold) {
  let visible = 0;
  for (const annotation of root.querySelectorAll(".annotation")) {
    const below = Number(annotation.dataset.confidence) < threshold;
    annotation.classList.toggle("below-threshold", below);
    if (!below) visible += 1;
  }
  return visible;
}
