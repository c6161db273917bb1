"""``vision-events query``: search a use case's events and print them (all pages).

A thin command over :class:`~vision_events_blocks.api.client.VisionEventsClient`: options are
parsed into the API's own models (so the rules live in one place; the mini-language is in
:mod:`.filters`), ``--meta`` is typed with the use case's schema, pages are streamed to the
output, and every failure becomes one ``Error: ...`` line (see :mod:`._common`). The output
file is written only once the API has answered, and removed again if a later page fails.
"""
from __future__ import annotations

import heapq
import itertools
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterator, List, Optional, Sequence

import click

from ..api.client import VisionEventsClient
from ..api.models import (
    EVENT_TYPES,
    MAX_ID_LENGTH,
    MAX_QUERY_LIMIT,
    TIMESTAMP_MAX_FUTURE,
    EventRecord,
    QueryRequest,
    QueryResponse,
)
from . import main
from ._common import check_output_path, format_option, with_client
from ._output import FORMATS, WRITERS, Progress
from .filters import (  # noqa: F401  (re-exported: the mini-language's public names)
    METADATA_TYPES,
    SYMBOL_OPERATORS,
    WORD_OPERATORS,
    parse_context_filter,
    parse_event_field_filter,
    parse_expression,
    parse_image_count,
    parse_metadata_filter,
    parse_meta,
    parse_time,
    plan_metadata_filters,
    resolve_meta_type,
)


def build_query(
    use_case: str,
    *,
    start: Optional[str] = None,
    end: Optional[str] = None,
    event_types: Sequence[str] = (),
    device_id: Optional[str] = None,
    stream_id: Optional[str] = None,
    workflow_id: Optional[str] = None,
    external_id: Optional[str] = None,
    classes: Sequence[str] = (),
    not_classes: Sequence[str] = (),
    image_count: Optional[str] = None,
    has_warnings: Optional[bool] = None,
    meta: Sequence[str] = (),
    fields: Sequence[str] = (),
    limit: Optional[int] = None,
    metadata_filters: Optional[List[Dict[str, Any]]] = None,
) -> QueryRequest:
    """The :class:`QueryRequest` the ``query`` options describe (validated by the model).

    ``metadata_filters`` (already planned with the schema) replaces parsing ``meta`` alone.
    """
    if classes and not_classes:
        raise click.BadParameter("use either --class or --not-class: the API takes one detection-class filter",
                                 param_hint="--class/--not-class")
    if not use_case.strip() or len(use_case) > MAX_ID_LENGTH:
        raise click.BadParameter(f"a use-case id is 1 to {MAX_ID_LENGTH} characters; `vision-events use-cases list` "
                                 "shows them", param_hint="--use-case")
    body: Dict[str, Any] = {"useCaseId": use_case}
    if start:
        body["startTime"] = parse_time(start, "--start")
        if body["startTime"] > datetime.now(timezone.utc) + TIMESTAMP_MAX_FUTURE:
            raise click.BadParameter(f"{start!r} is more than a day ahead: no event can be that new", param_hint="--start")
    if end:
        body["endTime"] = parse_time(end, "--end")
    if event_types:
        body["eventTypes"] = list(event_types)
    for key, value in (("deviceId", device_id), ("streamId", stream_id),
                       ("workflowId", workflow_id), ("externalId", external_id)):
        if value is not None:
            body[key] = parse_context_filter(value)
    if classes or not_classes:
        names = list(classes or not_classes)
        positive = bool(classes)
        if len(names) == 1:
            body["detectionClass"] = {"operator": "eq" if positive else "neq", "value": names[0]}
        else:
            body["detectionClass"] = {"operator": "in" if positive else "not_in", "value": names}
    if image_count is not None:
        body["imageCount"] = parse_image_count(image_count)
    if has_warnings is not None:
        body["hasWarnings"] = has_warnings
    if metadata_filters is None and meta:
        metadata_filters = [parse_metadata_filter(text) for text in meta]
    if metadata_filters:
        body["customMetadataFilters"] = metadata_filters
    if fields:
        body["eventFieldFilters"] = [parse_event_field_filter(text) for text in fields]
    if limit is not None:
        body["limit"] = limit
    return QueryRequest.model_validate(body)


def plan_queries(client: VisionEventsClient, options: Dict[str, Any]) -> List[QueryRequest]:
    """The request(s) for the options: ``--meta`` typed with the use case's schema (notes on
    stderr), one request per value when numbers or booleans use ``in``."""
    meta = options.pop("meta")
    base = build_query(**options)  # every other option is checked before any request...
    for text in meta:  # ...and --meta as far as it can be without the schema
        spec = parse_meta(text)
        if spec.explicit_type:
            resolve_meta_type(spec, None, options["use_case"])
    if not meta:
        return [base]
    schema = client.get_custom_metadata_schema(options["use_case"])
    stored = {name: list(field.types) for name, field in schema.fields.items()}
    variants, notes = plan_metadata_filters(meta, stored, options["use_case"])
    for note in notes:
        click.echo(f"Note: {note}", err=True)
    return [build_query(**options, metadata_filters=filters) for filters in variants]


class _Pages:
    """Events of one or more queries, newest first, counting pages for the progress line."""

    def __init__(self, client: VisionEventsClient, requests: Sequence[QueryRequest], progress: Progress) -> None:
        self.client = client
        self.progress = progress
        self.written = 0
        self.fetched = 0
        self.lookback_days: Optional[int] = None
        streams = [self._events(client.iter_pages(request)) for request in requests]
        key = lambda event: (event.timestamp, event.event_id)  # noqa: E731  (the server's order)
        self.events: Iterator[EventRecord] = (
            streams[0] if len(streams) == 1 else heapq.merge(*streams, key=key, reverse=True)
        )

    def _events(self, pages: Iterator[QueryResponse]) -> Iterator[EventRecord]:
        for page in pages:
            self.lookback_days = page.lookback_days
            self.fetched += len(page.events)
            self.progress.page(self.fetched)
            yield from page.events


def _empty_result_notes(requests: Sequence[QueryRequest], lookback_days: Optional[int]) -> List[str]:
    """Why a query found nothing, when the time range alone explains it."""
    end = requests[0].end_time
    if lookback_days and end is not None and end < datetime.now(timezone.utc) - timedelta(days=lookback_days):
        return [f"--end is more than {lookback_days} days ago, and events older than that are not kept"]
    return []


QUERY_HELP = """Search a use case's events and print them (all pages).

\b
Filters (all combine with AND):
  --start/--end        ISO 8601 (2024-01-15T10:30:00Z; naive = UTC) or a time ago: 30m 2h 7d 1w
  --event-type T       repeatable: quality_check inventory_count safety_alert custom operator_feedback
  --device-id X        equals X; '!=X' for "not X" (same for --stream-id --workflow-id --external-id)
  --class C            has an annotation of class C; repeat for any of several (in)
  --not-class C        has no annotation of class C; repeat for none of several (not_in)
  --image-count OP:N   e.g. gte:1, eq:0 (or >=1, =0); OP: eq neq gt gte lt lte
  --has-warnings / --no-warnings
  --meta 'F OP V[:T]'  custom metadata: 'temperature > 70', 'line in A1,B2', 'shift = 3:string';
                       T is string, number or boolean (int, float, bool... too); without T the
                       type stored in the use case is used (see `vision-events schema`), else
                       inferred (true/false, number, else string). in/not_in work for all types
  --field 'C OP V'     eventData column (result location item_count item_type alert_type
                       severity feedback): 'result = fail', 'item_count >= 10', 'severity in high,medium'
  OP is eq neq gt gte lt lte in not_in (with spaces around) or = != > >= < <=; in/not_in take a,b,c.

\b
Examples:
  vision-events query --use-case UC1 --start 1d --event-type quality_check --field 'result = fail'
  vision-events query --use-case UC1 --meta 'temperature > 70' --format csv --output hot.csv
"""


@main.command("query", help=QUERY_HELP)
@click.option("--use-case", "use_case", required=True, metavar="ID", help="Use case id to search.")
@click.option("--start", default=None, metavar="TIME", help="Earliest event time (inclusive).")
@click.option("--end", default=None, metavar="TIME", help="Latest event time (inclusive).")
@click.option("--event-type", "event_types", multiple=True, type=click.Choice(EVENT_TYPES), help="Event type (repeatable).")
@click.option("--device-id", default=None, metavar="[!=]X", help="Device id equals X (or '!=X').")
@click.option("--stream-id", default=None, metavar="[!=]X", help="Stream id equals X (or '!=X').")
@click.option("--workflow-id", default=None, metavar="[!=]X", help="Workflow id equals X (or '!=X').")
@click.option("--external-id", default=None, metavar="[!=]X", help="eventData.externalId equals X (or '!=X').")
@click.option("--class", "classes", multiple=True, metavar="C", help="Has a detection of class C (repeatable: any of).")
@click.option("--not-class", "not_classes", multiple=True, metavar="C", help="Has no detection of class C (repeatable).")
@click.option("--image-count", default=None, metavar="OP:N", help="Number of images, e.g. gte:1.")
@click.option("--has-warnings/--no-warnings", default=None, help="Only events with / without ingestion warnings.")
@click.option("--meta", multiple=True, metavar="'F OP V[:T]'", help="Custom metadata filter (repeatable, max 20).")
@click.option("--field", "fields", multiple=True, metavar="'C OP V'", help="eventData field filter (repeatable, max 20).")
@click.option("--limit", type=click.IntRange(1, MAX_QUERY_LIMIT), default=None, help="Page size (API default 100, max 1000).")
@click.option("--max-events", type=click.IntRange(min=1), default=None, help="Stop after this many events.")
@format_option(FORMATS)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write to FILE instead of stdout (replaced only when the query succeeds).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@with_client
def query_command(client: VisionEventsClient, max_events: Optional[int], fmt: str, output: Optional[str],
                  quiet: bool, **options: Any) -> None:
    check_output_path(output)
    if max_events is not None and (options["limit"] or 100) > max_events:
        options["limit"] = max_events  # never fetch more than asked for
    requests = plan_queries(client, options)
    progress = Progress(enabled=not quiet)
    results = _Pages(client, requests, progress)
    first = next(results.events, None)  # the output is opened only once the API has answered
    try:
        with click.open_file(output or "-", "w", encoding="utf-8", atomic=bool(output)) as stream:
            writer = WRITERS[fmt](stream)
            try:
                for event in itertools.chain([first] if first is not None else [], results.events):
                    writer.write(event)
                    results.written += 1
                    if max_events is not None and results.written >= max_events:
                        break
            finally:
                writer.close()
                progress.done()
    except OSError as exc:
        raise click.ClickException(f"cannot write {output or 'the output'}: {exc.strerror or exc}") from None
    if results.written == 0:
        for note in _empty_result_notes(requests, results.lookback_days):
            click.echo(f"Note: {note}", err=True)
    if output and not quiet:
        click.echo(f"wrote {results.written} events to {output}", err=True)


from . import use_cases  # noqa: E402,F401  (registers `use-cases` and `schema` next to `query`)
