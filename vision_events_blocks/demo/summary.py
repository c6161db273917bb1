"""The demo's closing report: what the workflows saw, what the server stored, what delivery cost.

Built from three independent witnesses so that a loss cannot hide: the event ids the sink
reported frame by frame, the events the server actually stored, and the sender's counters.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Any, Dict, Iterable, List


@dataclasses.dataclass
class DemoSummary:
    reported_ids: List[str]
    events: List[Dict[str, Any]]
    delivery: Dict[str, Any]            # demo.progress.delivery_totals(...)
    requests: List[Dict[str, Any]]      # LocalServer.request_log()

    @property
    def missing_ids(self) -> List[str]:
        stored = {e["eventId"] for e in self.events}
        return [i for i in self.reported_ids if i not in stored]

    @property
    def all_delivered(self) -> bool:
        """Something was reported, and all of it is stored; nothing dropped or dead-lettered."""
        return bool(self.reported_ids) and not self.missing_ids and not self.delivery["dropped_total"] and not self.delivery["dead_lettered"]

    def by_type(self) -> Dict[str, List[Dict[str, Any]]]:
        grouped: Dict[str, List[Dict[str, Any]]] = collections.defaultdict(list)
        for event in sorted(self.events, key=lambda e: e["timestamp"]):
            grouped[event["eventType"]].append(event)
        return dict(grouped)

    def builtin_requests(self) -> int:
        """Requests the built-in block would have made: one per image upload plus one per event."""
        uploads = sum(bool(img.get("sourceId")) + bool(img.get("inputSourceId"))
                      for e in self.events for img in e.get("images", []))
        return uploads + len(self.events)


def _counts(values: Iterable[Any]) -> str:
    return ", ".join(f"{value} x{count}" for value, count in collections.Counter(values).most_common())


def render(summary: DemoSummary) -> str:
    lines = ["", "Summary", "======="]
    grouped = summary.by_type()
    lines.append(f"Events reported by the workflows: {len(summary.reported_ids)}; "
                 f"stored by the server: {len(summary.events)}")
    for event_type, events in grouped.items():
        data = [e.get("eventData", {}) for e in events]
        if event_type == "quality_check":
            detail = f"pass {sum(d.get('result') == 'pass' for d in data)}, fail {sum(d.get('result') == 'fail' for d in data)}"
        elif event_type == "safety_alert":
            detail = f"alerts: {_counts(d.get('alertType') for d in data)}; severity: {_counts(d.get('severity') for d in data)}"
        elif event_type == "inventory_count":
            detail = "counts over time: " + " -> ".join(str(d.get("itemCount")) for d in data)
        else:
            detail = ""
        lines.append(f"  {event_type:<16} {len(events):>4}   {detail}")

    d = summary.delivery
    dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(d["dropped"].items())) or "none"
    lines += [
        "Delivery",
        f"  submitted {d['submitted']}, sent {d['sent']}, retried {d['retried']}, "
        f"dead-lettered {d['dead_lettered']}, pending {d['pending']}, dropped: {dropped}",
    ]
    if summary.requests:
        failed = sum(1 for r in summary.requests if r.get("status", 200) >= 400)
        connections = len({r.get("connectionId") for r in summary.requests})
        lines.append(f"  HTTP: {len(summary.requests)} requests over {connections} connection(s), {failed} of them "
                     f"failed by the server and retried. The built-in block needs {summary.builtin_requests()} "
                     f"requests on as many fresh connections for these events, and loses any that fails.")
    if not summary.reported_ids:
        lines.append("Result: the workflows reported no event at all (see the errors above).")
    elif summary.all_delivered:
        lines.append("Result: every event the workflows reported is stored on the server.")
    else:
        lines.append(f"Result: NOT all delivered: {len(summary.missing_ids)} reported event(s) missing on the server.")
    return "\n".join(lines)
