"""``vision-events query``, ``vision-events use-cases ...`` and ``vision-events schema``.

Thin commands over :class:`~vision_events_blocks.api.client.VisionEventsClient`: options are
parsed into the API's own models (so the rules live in one place), pages are streamed to the
output, and every failure becomes one ``Error: ...`` line: exit 2 for a bad option or a
missing key, exit 1 for an error the API answered or a network failure. The API key is never
printed: it only travels in the client's ``Authorization`` header.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

import click
from pydantic import BaseModel, ValidationError

from ..api.client import VisionEventsClient
from ..api.errors import MissingApiKeyError, VisionEventsError
from ..api.models import EVENT_FIELD_COLUMNS, EVENT_TYPES, MAX_QUERY_LIMIT, NUMERIC_EVENT_FIELD_COLUMNS, QueryRequest
from . import main
from ._output import FORMATS, WRITERS, Progress

# --------------------------------------------------------------------------------------------
# Parsing the filter mini-language (pure functions, unit-testable)
# --------------------------------------------------------------------------------------------
SYMBOL_OPERATORS = {"=": "eq", "==": "eq", "!=": "neq", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
WORD_OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in")
METADATA_TYPES = ("string", "number", "boolean")
_SYMBOL_EXPR = re.compile(r"^\s*(?P<name>.+?)\s*(?P<op>!=|==|>=|<=|=|>|<)\s*(?P<value>.*?)\s*$")
_WORD_EXPR = re.compile(
    r"^\s*(?P<name>.+?)\s+(?P<op>" + "|".join(sorted(WORD_OPERATORS, key=len, reverse=True)) + r")\s+(?P<value>.*?)\s*$"
)
_RELATIVE_TIME = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?P<unit>[smhdw])\Z")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expression(text: str, what: str) -> Tuple[str, str, str]:
    """``'name OP value'`` -> ``(name, operator, raw value)``.

    OP is a word (``eq neq gt gte lt lte in not_in``, surrounded by spaces) or a symbol
    (``= == != > >= < <=``). Names may contain spaces (metadata keys can).

    >>> parse_expression("temperature > 70", "--meta")
    ('temperature', 'gt', '70')
    >>> parse_expression("line in A1,B2", "--meta")
    ('line', 'in', 'A1,B2')
    """
    matches = [m for m in (_WORD_EXPR.match(text), _SYMBOL_EXPR.match(text)) if m]
    match = min(matches, key=lambda m: m.start("op")) if matches else None  # the first operator wins
    if not match or not match.group("name") or match.group("value") == "":
        raise click.BadParameter(
            f"{text!r} is not 'NAME OP VALUE'; OP is one of {' '.join(WORD_OPERATORS)} or = != > >= < <=",
            param_hint=what,
        )
    op = match.group("op")
    return match.group("name").strip(), SYMBOL_OPERATORS.get(op, op), match.group("value")


def _typed(raw: str, kind: str, what: str) -> Any:
    if kind == "string":
        return raw
    if kind == "boolean":
        lowered = raw.strip().lower()
        if lowered not in ("true", "false"):
            raise click.BadParameter(f"{raw!r} is not a boolean (true/false)", param_hint=what)
        return lowered == "true"
    try:
        number = float(raw)
    except ValueError:
        raise click.BadParameter(f"{raw!r} is not a number", param_hint=what) from None
    return int(number) if number.is_integer() and re.fullmatch(r"\s*[+-]?\d+\s*", raw) else number


def _infer_type(raw: str) -> str:
    if raw.strip().lower() in ("true", "false"):
        return "boolean"
    try:
        float(raw)
    except ValueError:
        return "string"
    return "number"


def parse_metadata_filter(text: str) -> Dict[str, Any]:
    """``--meta 'field OP value[:type]'`` -> one ``customMetadataFilters`` item.

    The type is ``:string``, ``:number`` or ``:boolean`` at the end, or inferred from the
    value (``true``/``false`` -> boolean, a number -> number, else string). ``in``/``not_in``
    take comma-separated values.

    >>> parse_metadata_filter("temperature >= 70.5")
    {'field': 'temperature', 'operator': 'gte', 'value': 70.5, 'type': 'number'}
    >>> parse_metadata_filter("batch = 42:string")
    {'field': 'batch', 'operator': 'eq', 'value': '42', 'type': 'string'}
    """
    kind: Optional[str] = None
    for candidate in METADATA_TYPES:
        if text.rstrip().endswith(f":{candidate}"):
            kind, text = candidate, text.rstrip()[: -len(candidate) - 1]
            break
    field, operator, raw = parse_expression(text, "--meta")
    raws = [part.strip() for part in raw.split(",")] if operator in ("in", "not_in") else [raw]
    kind = kind or _infer_type(raws[0])
    values = [_typed(part, kind, "--meta") for part in raws]
    return {"field": field, "operator": operator, "value": values if operator in ("in", "not_in") else values[0],
            "type": kind}


def parse_event_field_filter(text: str) -> Dict[str, Any]:
    """``--field 'column OP value'`` -> one ``eventFieldFilters`` item (``item_count`` is numeric).

    >>> parse_event_field_filter("result = fail")
    {'column': 'result', 'operator': 'eq', 'value': 'fail'}
    """
    column, operator, raw = parse_expression(text, "--field")
    if column not in EVENT_FIELD_COLUMNS:
        raise click.BadParameter(f"column {column!r} is not one of {', '.join(EVENT_FIELD_COLUMNS)}", param_hint="--field")
    kind = "number" if column in NUMERIC_EVENT_FIELD_COLUMNS else "string"
    if operator in ("in", "not_in"):
        return {"column": column, "operator": operator, "value": [_typed(p.strip(), kind, "--field") for p in raw.split(",")]}
    return {"column": column, "operator": operator, "value": _typed(raw, kind, "--field")}


def parse_context_filter(text: str) -> Dict[str, str]:
    """``X`` -> eq X; ``!=X`` -> neq X (the context filters allow only these two)."""
    if text.startswith("!="):
        return {"operator": "neq", "value": text[2:]}
    return {"operator": "eq", "value": text}


def parse_image_count(text: str) -> Dict[str, Any]:
    """``OP:N`` (``gte:1``) or a symbol form (``>=1``, ``=0``, ``3``) -> the ``imageCount`` filter."""
    match = re.fullmatch(r"\s*(?:(?P<word>eq|neq|gt|gte|lt|lte):|(?P<sym>!=|==|>=|<=|=|>|<))?\s*(?P<n>\d+)\s*", text)
    if not match:
        raise click.BadParameter(f"{text!r} is not OP:N (e.g. gte:1) or >=N", param_hint="--image-count")
    operator = match.group("word") or SYMBOL_OPERATORS.get(match.group("sym") or "=", "eq")
    return {"operator": operator, "value": int(match.group("n"))}


def parse_time(text: str, what: str, now: Optional[datetime] = None) -> datetime:
    """ISO 8601 (naive means UTC) or a duration ago: ``30m``, ``2h``, ``7d``, ``1w``."""
    relative = _RELATIVE_TIME.match(text.strip())
    if relative:
        delta = timedelta(**{_UNITS[relative.group("unit")]: float(relative.group("amount"))})
        return (now or datetime.now(timezone.utc)) - delta
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither ISO 8601 (2024-01-15T10:30:00Z) nor a duration ago (30m, 2h, 7d)", param_hint=what
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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
) -> QueryRequest:
    """The :class:`QueryRequest` the ``query`` options describe (validated by the model)."""
    if classes and not_classes:
        raise click.BadParameter("use either --class or --not-class: the API takes one detection-class filter",
                                 param_hint="--class/--not-class")
    body: Dict[str, Any] = {"useCaseId": use_case}
    if start:
        body["startTime"] = parse_time(start, "--start")
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
    if meta:
        body["customMetadataFilters"] = [parse_metadata_filter(text) for text in meta]
    if fields:
        body["eventFieldFilters"] = [parse_event_field_filter(text) for text in fields]
    if limit is not None:
        body["limit"] = limit
    return QueryRequest.model_validate(body)


# --------------------------------------------------------------------------------------------
# Shared options and error handling
# --------------------------------------------------------------------------------------------
def api_options(command: Callable) -> Callable:
    """``--api-key`` and ``--api-url``; when absent the client reads the environment."""
    command = click.option(
        "--api-url", default=None, metavar="URL",
        help="API base URL [env: VISION_EVENTS_API_URL, API_BASE_URL; default https://api.roboflow.com].",
    )(command)
    command = click.option(
        "--api-key", default=None, metavar="KEY",
        help="Roboflow API key [env: ROBOFLOW_API_KEY, API_KEY]. Prefer the environment: "
             "command lines are visible to other users.",
    )(command)
    return command


def _validation_message(exc: ValidationError) -> str:
    """One line: ``field.path: message; ...`` (pydantic's own text spans many lines)."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Turn our errors into click's one-line ``Error: ...`` (never a traceback)."""
    try:
        yield
    except MissingApiKeyError as exc:
        raise click.UsageError(exc.message) from None
    except ValidationError as exc:
        raise click.UsageError(_validation_message(exc)) from None
    except VisionEventsError as exc:
        raise click.ClickException(exc.message) from None
    except ValueError as exc:  # argument checks of the client (status, ids, URL)
        raise click.UsageError(str(exc)) from None


def with_client(command: Callable) -> Callable:
    """Adds the API options, opens a client and passes it as ``client``; reports errors."""

    @api_options
    @functools.wraps(command)
    def wrapper(api_key: Optional[str], api_url: Optional[str], **kwargs: Any) -> Any:
        with reported_errors():
            with VisionEventsClient(api_key=api_key, api_url=api_url) as client:
                return command(client=client, **kwargs)

    return wrapper


def _echo_json(answer: BaseModel) -> None:
    """An API answer as pretty JSON with the API's own (camelCase) field names."""
    wire = answer.model_dump(by_alias=True, exclude_none=True, mode="json")
    click.echo(json.dumps(wire, indent=2, ensure_ascii=False))


def _echo_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns, each as wide as its widest cell."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


# --------------------------------------------------------------------------------------------
# vision-events query
# --------------------------------------------------------------------------------------------
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
                       type T inferred (true/false, number, else string) unless given
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
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None, help="Write to FILE instead of stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@with_client
def query_command(client: VisionEventsClient, max_events: Optional[int], fmt: str, output: Optional[str],
                  quiet: bool, **options: Any) -> None:
    if max_events is not None and (options["limit"] or 100) > max_events:
        options["limit"] = max_events  # never fetch more than asked for
    request = build_query(**options)
    progress = Progress(enabled=not quiet)
    pages = client.iter_pages(request)
    first = next(pages)  # the output is opened only once the API has answered
    with click.open_file(output or "-", "w", encoding="utf-8") as stream:
        writer = WRITERS[fmt](stream)
        written = 0
        try:
            for page in itertools.chain([first], pages):
                for event in page.events[: None if max_events is None else max_events - written]:
                    writer.write(event)
                    written += 1
                progress.page(written)
                if max_events is not None and written >= max_events:
                    break
        finally:
            writer.close()
            progress.done()
    if output and not quiet:
        click.echo(f"wrote {written} events to {output}", err=True)


# --------------------------------------------------------------------------------------------
# vision-events use-cases ...
# --------------------------------------------------------------------------------------------
@main.group("use-cases")
def use_cases() -> None:
    """List, create, rename, archive and unarchive use cases."""


@use_cases.command("list")
@click.option("--status", type=click.Choice(["active", "inactive"]), default=None,
              help="active (the API's default) or inactive (archived).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@with_client
def list_use_cases(client: VisionEventsClient, status: Optional[str], fmt: str) -> None:
    """List use cases (id, name, status, event count when the API gives it)."""
    answer = client.list_use_cases(status)
    if fmt == "json":
        _echo_json(answer)
        return
    rows = [(u.id, u.name, u.status or "-", "-" if u.event_count is None else str(u.event_count)) for u in answer.use_cases]
    _echo_table(("ID", "NAME", "STATUS", "EVENTS"), rows)
    if answer.lookback_days is not None:
        click.echo(f"(events are kept {answer.lookback_days} days)", err=True)


@use_cases.command("create")
@click.argument("name")
@with_client
def create_use_case(client: VisionEventsClient, name: str) -> None:
    """Create a use case; prints its id (use it as --use-case / useCaseId)."""
    created = client.create_use_case(name)
    click.echo(created.id)


@use_cases.command("rename")
@click.argument("use_case_id", metavar="ID")
@click.argument("name")
@with_client
def rename_use_case(client: VisionEventsClient, use_case_id: str, name: str) -> None:
    """Give a use case a new (unique) name."""
    renamed = client.update_use_case(use_case_id, name=name)
    click.echo(f"renamed {renamed.id} to {renamed.name or name!r}")


def _archive_command(action: str, help_text: str) -> None:
    """``use-cases archive`` and ``use-cases unarchive``: the same command but for the call."""

    @use_cases.command(action, help=help_text)
    @click.argument("use_case_id", metavar="ID")
    @with_client
    def command(client: VisionEventsClient, use_case_id: str) -> None:
        getattr(client, f"{action}_use_case")(use_case_id)
        click.echo(f"{action}d {use_case_id}")


_archive_command("archive", "Archive (status inactive): events are kept, new events are rejected.")
_archive_command("unarchive", "Unarchive (status active): new events are accepted again.")


# --------------------------------------------------------------------------------------------
# vision-events schema
# --------------------------------------------------------------------------------------------
@main.command("schema")
@click.argument("use_case_id", metavar="USE_CASE_ID")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@with_client
def schema_command(client: VisionEventsClient, use_case_id: str, fmt: str) -> None:
    """The custom-metadata keys seen in a use case, with their value types (for --meta)."""
    schema = client.get_custom_metadata_schema(use_case_id)
    if fmt == "json":
        _echo_json(schema)
        return
    if not schema.fields:
        click.echo("(no custom metadata seen yet)", err=True)
        return
    _echo_table(("FIELD", "TYPES"), [(name, ", ".join(field.types)) for name, field in sorted(schema.fields.items())])
