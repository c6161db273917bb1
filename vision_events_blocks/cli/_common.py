"""What the client commands share: the API options, one output flag, and error reporting.

Every failure becomes one ``Error: ...`` line that names the problem and the next step:
exit 2 for a bad option or a missing key (click's usage errors), exit 1 for an error the API
answered or a network failure. The API key is never printed: messages name where the key
came from (``--api-key``, ``ROBOFLOW_API_KEY``), never the key itself.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import click
from pydantic import BaseModel, ValidationError

from ..api._base import API_KEY_ENV_VARS, API_URL_ENV_VARS, DEFAULT_API_URL
from ..api.client import VisionEventsClient
from ..api.validation import error_text
from ..api.errors import (
    AuthenticationError,
    MissingApiKeyError,
    NotFoundError,
    PermissionDeniedError,
    RequestTimeout,
    TransportError,
    VisionEventsError,
)

LOCAL_URL_HINT = "export VISION_EVENTS_API_URL=http://127.0.0.1:8787"
ALL_FORMATS = ("table", "json", "jsonl", "csv")


# --------------------------------------------------------------------------------------------
# --api-key / --api-url and where they came from
# --------------------------------------------------------------------------------------------
def api_options(command: Callable) -> Callable:
    """``--api-key`` and ``--api-url``; when absent the client reads the environment."""
    command = click.option(
        "--api-url", default=None, metavar="URL",
        help="API base URL [env: VISION_EVENTS_API_URL, API_BASE_URL; default https://api.roboflow.com].",
    )(command)
    command = click.option(
        "--timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
        help="Give up on a request after this long [default: 5 s to connect, 30 s for an answer].",
    )(command)
    command = click.option(
        "--api-key", default=None, metavar="KEY",
        help="Roboflow API key [env: ROBOFLOW_API_KEY, API_KEY]. Prefer the environment: "
             "command lines are visible to other users.",
    )(command)
    return command


def _source(option_value: Optional[str], option: str, env_vars: Sequence[str]) -> Optional[str]:
    """Which of ``--option`` / the variables gave the value (the client's order), or ``None``."""
    if option_value is not None and option_value.strip():
        return option
    return next((name for name in env_vars if (os.environ.get(name) or "").strip()), None)


def url_source(api_url: Optional[str]) -> Optional[str]:
    return _source(api_url, "--api-url", API_URL_ENV_VARS)


def key_source(api_key: Optional[str]) -> str:
    return _source(api_key, "--api-key", API_KEY_ENV_VARS) or "--api-key"


# --------------------------------------------------------------------------------------------
# Errors -> one line with the next step
# --------------------------------------------------------------------------------------------
def validation_message(exc: ValidationError) -> str:
    """One line: ``field.path: message; ...`` (pydantic's own text spans many lines)."""
    return error_text(exc, limit=None)


def explain(exc: VisionEventsError, api_key: Optional[str] = None, api_url: Optional[str] = None) -> str:
    """The error's message plus what to do about it (never the key, only where it came from)."""
    source = url_source(api_url)
    if isinstance(exc, TransportError):
        url = exc.api_url or "the API"
        if isinstance(exc, RequestTimeout):
            return (f"no answer from {url} in time ({exc.detail or exc.message}); the server is slow or stuck: "
                    f"try again (--timeout waits longer), or check {source or 'VISION_EVENTS_API_URL'}")
        if source is None:
            return (f"cannot reach the Vision Events API at {url} ({exc.detail or exc.message}); "
                    f"VISION_EVENTS_API_URL is not set, so the cloud API was used. For a local server run "
                    f"`vision-events serve` and {LOCAL_URL_HINT} (or pass --api-url)")
        return (f"cannot reach the Vision Events API at {url} ({exc.detail or exc.message}), set by {source}; "
                f"is the server running? Start a local one with `vision-events serve`, or fix {source}")
    message = _explain_status(exc, api_key)
    if source is None and isinstance(exc, (AuthenticationError, PermissionDeniedError, NotFoundError)):
        message += f" (VISION_EVENTS_API_URL is not set, so this was the cloud API, {DEFAULT_API_URL})"
    return message


def _explain_status(exc: VisionEventsError, api_key: Optional[str]) -> str:
    if isinstance(exc, AuthenticationError):
        return (f"{exc.message}: the API key from {key_source(api_key)} was refused; check it "
                f"(`vision-events serve` prints its key and keeps it in <data-dir>/dev-api-key)")
    if isinstance(exc, PermissionDeniedError):
        return (f"{exc.message}: the API key from {key_source(api_key)} lacks the scope for this command "
                f"(reading needs vision-events:read, sending vision-events:write, use cases vision-events:manage)")
    if isinstance(exc, NotFoundError) and "not found" in (exc.error_message or "").lower():
        return f"{exc.message}: no such use case here; `vision-events use-cases list` shows the ids"
    if exc.status_code in (400, 409) and "already exists" in (getattr(exc, "error_message", "") or ""):
        return f"{exc.message}: names are unique; `vision-events use-cases list` shows its id"
    if exc.retryable and exc.status_code:
        later = f" in {exc.retry_after:.0f} s" if exc.retry_after is not None else ""
        return f"{exc.message}: the server is busy or failing; try again{later}"
    return exc.message


@contextlib.contextmanager
def reported_errors(api_key: Optional[str] = None, api_url: Optional[str] = None) -> Iterator[None]:
    """Turn our errors into click's one-line ``Error: ...`` (never a traceback)."""
    try:
        yield
    except MissingApiKeyError as exc:
        raise click.UsageError(
            f"{exc.message}. For `vision-events serve`, use the key it printed at start "
            "(kept in <data-dir>/dev-api-key)"
        ) from None
    except ValidationError as exc:
        raise click.UsageError(validation_message(exc)) from None
    except VisionEventsError as exc:
        raise click.ClickException(explain(exc, api_key, api_url)) from None
    except ValueError as exc:  # argument checks of the client (status, ids, URL)
        message = str(exc)
        if message.startswith("api_url "):  # the client names its argument; here it is the option
            message = "--api-url " + message[len("api_url "):].replace("pass the key as api_key", "use --api-key")
        raise click.UsageError(message) from None


def with_client(command: Callable) -> Callable:
    """Adds the API options, opens a client and passes it as ``client``; reports errors."""

    @api_options
    @functools.wraps(command)
    def wrapper(api_key: Optional[str], api_url: Optional[str], timeout: Optional[float], **kwargs: Any) -> Any:
        with reported_errors(api_key, api_url):
            with VisionEventsClient(api_key=api_key, api_url=api_url, timeout=timeout) as client:
                return command(client=client, **kwargs)

    return wrapper


# --------------------------------------------------------------------------------------------
# One output flag: --format table|json|jsonl|csv (and --json for --format json)
# --------------------------------------------------------------------------------------------
def format_option(choices: Sequence[str] = ALL_FORMATS, default: str = "table") -> Callable[[Callable], Callable]:
    """``--format`` with ``choices`` (passed on as ``fmt``), and ``--json`` as its alias for json."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args: Any, fmt: Optional[str], as_json: bool, **kwargs: Any) -> Any:
            if as_json and fmt not in (None, "json"):
                raise click.UsageError(f"--json means --format json; it cannot go with --format {fmt}")
            return command(*args, fmt="json" if as_json else (fmt or default), **kwargs)

        wrapper = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(wrapper)
        return click.option(
            "--format", "fmt", type=click.Choice(choices), default=None,
            help=f"Output format: {', '.join(choices)} [default: {default}].",
        )(wrapper)

    return decorate


def check_output_path(path: Optional[str], option: str = "--output") -> None:
    """Fail early (exit 2, naming the file) when ``path`` cannot be written."""
    if path is None or path == "-":
        return
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise click.BadParameter(f"{path} is a directory; give a file name", param_hint=option)
    if not parent.is_dir():
        raise click.BadParameter(f"cannot write {path}: directory {parent} does not exist", param_hint=option)
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise click.BadParameter(f"cannot write {path}: permission denied", param_hint=option)


def echo_json(answer: Any) -> None:
    """An API answer (a model or plain data) as pretty JSON, with the API's camelCase names."""
    wire = answer.model_dump(by_alias=True, exclude_none=True, mode="json") if isinstance(answer, BaseModel) else answer
    click.echo(json.dumps(wire, indent=2, ensure_ascii=False))


def echo_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns, each as wide as its widest cell."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def echo_records(fmt: str, header: Sequence[str], rows: Sequence[Sequence[str]], records: Sequence[dict],
                 document: Any) -> None:
    """``table`` (header + rows), ``csv`` (the same), ``jsonl`` (one record a line) or ``json`` (document)."""
    if fmt == "json":
        echo_json(document)
    elif fmt == "jsonl":
        for record in records:
            click.echo(json.dumps(record, ensure_ascii=False))
    elif fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
    else:
        echo_table(header, rows)
