"""Writing events out: a readable table, a JSON array, JSON lines or CSV, streamed page by page.

Every writer takes events one at a time, so exporting a large query never holds more than
one page in memory. Cells of the table are cut to a fixed width; jsonl and csv are complete.
"""
from __future__ import annotations

import csv
import json
import sys
from datetime import datetime, timezone
from typing import IO, Any, Callable, Dict, List, Sequence

import click

from ..api.models import EventRecord

FORMATS = ("table", "json", "jsonl", "csv")

# Every eventData key of spec §7 gets its own CSV column, so a spreadsheet can filter on them.
EVENT_DATA_KEYS = (
    "result", "itemCount", "location", "itemType", "alertType", "severity",
    "description", "value", "externalId", "relatedEventId", "feedback",
)
CSV_COLUMNS = (
    ["eventId", "eventType", "timestamp", "useCaseId", "deviceId", "streamId", "workflowId", "imageCount",
     "detectionClasses"]
    + [f"eventData.{key}" for key in EVENT_DATA_KEYS]
    + ["eventDataOther", "customMetadata", "comment"]
)
TABLE_COLUMNS = (("TIMESTAMP", 24), ("TYPE", 17), ("EVENT ID", 36), ("DEVICE", 16), ("IMG", 3), ("DATA", 40))


def wire(event: EventRecord) -> Dict[str, Any]:
    """An event exactly as the API sent it (camelCase, unknown keys kept)."""
    return event.model_dump(by_alias=True, exclude_none=True, mode="json")


def detection_classes(event: EventRecord) -> List[str]:
    """Distinct class names over every annotation list of every image, in order of appearance."""
    seen: Dict[str, None] = {}
    for image in event.images:
        for listed in (image.object_detections, image.classifications,
                       image.instance_segmentations, image.keypoints):
            for annotation in listed:
                name = annotation.get("class")
                if isinstance(name, str):
                    seen.setdefault(name, None)
    return list(seen)


def _summary(values: Dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in values.items())


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _iso(timestamp: datetime) -> str:
    return timestamp.isoformat().replace("+00:00", "Z")


def _table_time(timestamp: datetime) -> str:
    """UTC to the millisecond, ``2024-01-15T10:30:00.123Z``: fits the column without being cut."""
    return timestamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


class _Writer:
    """One event at a time to ``stream`` (pages are streamed, never held); ``close`` flushes."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, event: EventRecord) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stream.flush()


class TableWriter(_Writer):
    """Fixed-width columns, header first; the DATA column shows eventData then metadata."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self.stream.write(self._line([name for name, _ in TABLE_COLUMNS]))

    @staticmethod
    def _line(cells: Sequence[str]) -> str:
        parts = [_cut(cell, width).ljust(width) for cell, (_, width) in zip(cells, TABLE_COLUMNS)]
        parts[-1] = _cut(cells[-1], 200)  # the last column may run on, up to a point
        return "  ".join(parts).rstrip() + "\n"

    def write(self, event: EventRecord) -> None:
        data = _summary(event.event_data)
        if event.custom_metadata:
            data = f"{data} | {_summary(event.custom_metadata)}" if data else _summary(event.custom_metadata)
        self.stream.write(self._line([
            _table_time(event.timestamp),
            event.event_type,
            event.event_id,
            event.device_id or "-",
            str(len(event.images)),
            data or "-",
        ]))


class JsonLinesWriter(_Writer):
    """One JSON object per line, the API's own shape."""

    def write(self, event: EventRecord) -> None:
        self.stream.write(json.dumps(wire(event), ensure_ascii=False) + "\n")


class JsonArrayWriter(_Writer):
    """One JSON array of events, the API's own shape, written as the events come."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self.count = 0

    def write(self, event: EventRecord) -> None:
        self.stream.write(("[\n  " if self.count == 0 else ",\n  ") + json.dumps(wire(event), ensure_ascii=False))
        self.count += 1

    def close(self) -> None:
        self.stream.write("[]\n" if self.count == 0 else "\n]\n")
        super().close()


class CsvWriter(_Writer):
    """Fixed columns (see :data:`CSV_COLUMNS`); free-form parts as JSON text in one cell."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self.writer = csv.writer(stream, lineterminator="\n")  # text streams translate "\n" themselves
        self.writer.writerow(CSV_COLUMNS)

    def write(self, event: EventRecord) -> None:
        data = dict(event.event_data)
        known = [data.pop(key, "") for key in EVENT_DATA_KEYS]
        self.writer.writerow(
            [event.event_id, event.event_type, _iso(event.timestamp),
             event.use_case_id or "", event.device_id or "", event.stream_id or "", event.workflow_id or "",
             len(event.images), ";".join(detection_classes(event))]
            + known
            + [json.dumps(data) if data else "",
               json.dumps(event.custom_metadata) if event.custom_metadata else "",
               event.comment or ""]
        )


WRITERS: Dict[str, Callable[[IO[str]], _Writer]] = {
    "table": TableWriter, "json": JsonArrayWriter, "jsonl": JsonLinesWriter, "csv": CsvWriter,
}


class Progress:
    """``fetched N events (P pages)`` on stderr: one line rewritten in a terminal, else one per page."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.interactive = sys.stderr.isatty()
        self.pages = 0

    def page(self, events_so_far: int) -> None:
        self.pages += 1
        if not self.enabled:
            return
        message = f"fetched {events_so_far} events ({self.pages} page{'s' if self.pages != 1 else ''})"
        if self.interactive:
            click.echo(f"\r{message}", err=True, nl=False)
        else:
            click.echo(message, err=True)

    def done(self) -> None:
        if self.enabled and self.interactive and self.pages:
            click.echo("", err=True)
