"""``vision-events outbox status|flush|purge``: look after a durable outbox from the shell."""
from __future__ import annotations

import json
import time

import click

from . import main


@main.group()
def outbox() -> None:
    """Inspect, deliver or empty a durable outbox directory."""


_dir_option = click.option("--dir", "directory", required=True, type=click.Path(file_okay=False),
                           help="The outbox directory (VISION_EVENTS_OUTBOX_DIR).")


@outbox.command()
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def status(directory: str, as_json: bool) -> None:
    """Events and bytes waiting, the oldest one's age, dead letters (read-only; safe while a sender runs)."""
    from ..delivery.outbox import outbox_status

    try:
        info = outbox_status(directory)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    age = "-" if info["oldest_age_s"] is None else f"{info['oldest_age_s']:.0f} s"
    click.echo(f"outbox       {info['directory']}")
    click.echo(f"waiting      {info['events']} event(s), {info['bytes'] / 1e6:.2f} MB, oldest {age}")
    click.echo(f"dead letters {info['dead_letters']}")
    for record in info["recent_dead_letters"]:
        click.echo(f"  {record['eventId']}  HTTP {record['status']}: {record['message']}")


@outbox.command()
@_dir_option
@click.option("--api-url", default=None, help="API base URL (else VISION_EVENTS_API_URL / API_BASE_URL / the cloud).")
@click.option("--api-key", default=None, help="API key (else ROBOFLOW_API_KEY).", envvar="ROBOFLOW_API_KEY")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to keep trying.")
def flush(directory: str, api_url: str, api_key: str, timeout: float) -> None:
    """Deliver everything waiting in the outbox to the server, then exit (non-zero if some is left)."""
    from ..delivery import OutboxLockedError, Sender, SenderConfig, outbox_status

    try:
        waiting = outbox_status(directory)["events"]
        sender = Sender(api_url, api_key, SenderConfig.from_env(outbox_dir=directory, shutdown_timeout_s=1.0))
    except (FileNotFoundError, OutboxLockedError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    started = time.monotonic()
    click.echo(f"delivering {waiting} event(s) from {directory} ...")
    done = sender.flush(timeout, delivered=True)
    stats = sender.stats()
    sender.close(timeout=2.0)
    click.echo(f"sent {stats['sent']}, dead-lettered {stats['dead_lettered']}, still waiting {stats['pending']} "
               f"({time.monotonic() - started:.1f} s)")
    if stats["last_error"]:
        click.echo(f"last error: {stats['last_error']}")
    if not done:
        raise SystemExit(1)


@outbox.command()
@_dir_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(directory: str, yes: bool) -> None:
    """Delete every waiting event, image and dead letter in the outbox (they are lost)."""
    from ..delivery import OutboxLockedError, outbox_status, purge_outbox

    try:
        waiting = outbox_status(directory)["events"]
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    if not yes:
        click.confirm(f"Delete {waiting} undelivered event(s) from {directory}?", abort=True)
    try:
        removed = purge_outbox(directory)
    except OutboxLockedError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"purged {removed} event(s) from {directory}")
