"""``vision-events use-cases list|create|rename|archive|unarchive`` and ``vision-events schema``.

Every command takes ``--format table|json|jsonl|csv`` (``--json`` for short), like ``query``.
``table`` is for people; ``create`` then prints just the new id, so that
``UC=$(vision-events use-cases create NAME)`` works.
"""
from __future__ import annotations

from typing import Optional

import click

from ..api.client import VisionEventsClient
from ..api.models import USE_CASE_STATUSES
from . import main
from ._common import ALL_FORMATS, echo_records, format_option, with_client


def _iso(value: object) -> str:
    return value.isoformat().replace("+00:00", "Z") if value is not None else ""  # type: ignore[attr-defined]


@main.group("use-cases")
def use_cases() -> None:
    """List, create, rename, archive and unarchive use cases."""


@use_cases.command("list")
@click.option("--status", type=click.Choice(USE_CASE_STATUSES), default=None,
              help="active (the API's default) or inactive (archived).")
@format_option(ALL_FORMATS)
@with_client
def list_use_cases(client: VisionEventsClient, status: Optional[str], fmt: str) -> None:
    """List use cases (id, name, status, event count when the API gives it)."""
    answer = client.list_use_cases(status)
    records = [u.model_dump(by_alias=True, exclude_none=True, mode="json") for u in answer.use_cases]
    if fmt in ("csv", "jsonl", "json"):
        header = ("id", "name", "status", "eventCount", "createdAt", "updatedAt")
        rows = [[str(r.get(column, "")) for column in header] for r in records]
        echo_records(fmt, header, rows, records, answer)
        return
    rows = [(u.id, u.name, u.status or "-", "-" if u.event_count is None else str(u.event_count)) for u in answer.use_cases]
    echo_records("table", ("ID", "NAME", "STATUS", "EVENTS"), rows, records, answer)
    if not rows:
        click.echo(f"(no {status or 'active'} use cases; create one with `vision-events use-cases create NAME`)",
                   err=True)
    if answer.lookback_days is not None:
        click.echo(f"(events are kept {answer.lookback_days} days)", err=True)


def _echo_use_case(fmt: str, answer: object, text: str) -> None:
    """The answer of create/rename/archive: ``text`` as a table, else the API's answer."""
    if fmt == "table":
        click.echo(text)
        return
    record = answer.model_dump(by_alias=True, exclude_none=True, mode="json")  # type: ignore[attr-defined]
    header = tuple(record)
    echo_records(fmt, header, [[str(record[k]) for k in header]], [record], record)


@use_cases.command("create")
@click.argument("name")
@format_option(ALL_FORMATS)
@with_client
def create_use_case(client: VisionEventsClient, name: str, fmt: str) -> None:
    """Create a use case; prints its id (use it as --use-case / useCaseId)."""
    created = client.create_use_case(name)
    _echo_use_case(fmt, created, created.id)


@use_cases.command("rename")
@click.argument("use_case_id", metavar="ID")
@click.argument("name")
@format_option(ALL_FORMATS)
@with_client
def rename_use_case(client: VisionEventsClient, use_case_id: str, name: str, fmt: str) -> None:
    """Give a use case a new (unique) name."""
    renamed = client.update_use_case(use_case_id, name=name)
    _echo_use_case(fmt, renamed, f"renamed {renamed.id} to {renamed.name or name!r}")


def _archive_command(action: str, help_text: str) -> None:
    """``use-cases archive`` and ``use-cases unarchive``: the same command but for the call."""

    @use_cases.command(action, help=help_text)
    @click.argument("use_case_id", metavar="ID")
    @format_option(ALL_FORMATS)
    @with_client
    def command(client: VisionEventsClient, use_case_id: str, fmt: str) -> None:
        answer = getattr(client, f"{action}_use_case")(use_case_id)
        _echo_use_case(fmt, answer, f"{action}d {use_case_id}")


_archive_command("archive", "Archive (status inactive): events are kept, new events are rejected.")
_archive_command("unarchive", "Unarchive (status active): new events are accepted again.")


@main.command("schema")
@click.argument("use_case_id", metavar="USE_CASE_ID")
@format_option(ALL_FORMATS)
@with_client
def schema_command(client: VisionEventsClient, use_case_id: str, fmt: str) -> None:
    """The custom-metadata keys seen in a use case, with their value types (for --meta)."""
    schema = client.get_custom_metadata_schema(use_case_id)
    fields = sorted(schema.fields.items())
    records = [{"field": name, "types": list(field.types)} for name, field in fields]
    rows = [(name, ", ".join(field.types) if fmt == "table" else ";".join(field.types)) for name, field in fields]
    if fmt == "table" and not fields:
        click.echo("(no custom metadata seen yet)", err=True)
        return
    echo_records(fmt, ("FIELD", "TYPES") if fmt == "table" else ("field", "types"), rows, records, schema)
