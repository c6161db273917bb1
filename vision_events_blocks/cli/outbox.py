"""``vision-events outbox status|flush|purge``: look after a durable outbox from the shell.

Without ``--dir`` the commands use the directory the senders use: ``VISION_EVENTS_OUTBOX_DIR``,
else the default location (inference's model cache, see the README's *Durability*). An outbox
holds one slot per sender process; every command covers every slot.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, Optional

import click

from . import main


@main.group()
def outbox() -> None:
    """Inspect, deliver or empty a durable outbox directory (every slot in it)."""


_dir_option = click.option(
    "--dir", "directory", default=None, type=click.Path(file_okay=False),
    help="The outbox directory (default: VISION_EVENTS_OUTBOX_DIR, else the default location).")


def _resolve(directory: Optional[str]) -> str:
    """The directory to work on, or a clear error (exit 2) when there is none to find."""
    from ..delivery.outbox import configured_root

    if directory:
        path = directory
    else:
        path, why = configured_root(None)
        if path is None:
            raise click.UsageError(f"no outbox directory: {why}; pass --dir")
    if not os.path.isdir(path):
        raise click.UsageError(f"no outbox at {path} (no such directory); pass --dir or set VISION_EVENTS_OUTBOX_DIR")
    return path


def _status(path: str) -> Dict[str, Any]:
    from ..delivery import outbox_status

    try:
        return outbox_status(path)
    except OSError as exc:
        raise click.ClickException(f"cannot read the outbox {path}: {exc}") from None


@outbox.command()
@_dir_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
def status(directory: Optional[str], output_format: str, as_json: bool) -> None:
    """Events and bytes waiting per slot, the oldest one's age, dead letters (read-only; safe
    while senders run)."""
    info = _status(_resolve(directory))
    if as_json or output_format == "json":
        click.echo(json.dumps(info, indent=2))
        return
    age = "-" if info["oldest_age_s"] is None else f"{info['oldest_age_s']:.0f} s"
    click.echo(f"outbox       {info['directory']}")
    click.echo(f"waiting      {info['events']} event(s), {info['bytes'] / 1e6:.2f} MB, oldest {age}")
    click.echo(f"dead letters {info['dead_letters']}")
    for slot in info["slots"]:
        owner = "in use by a running sender" if slot["held"] else "free (adopted by the next sender with its key)"
        line = f"  {os.path.basename(slot['slot'])}: {slot['events']} event(s), {owner}"
        if slot.get("apiUrl"):
            kind = slot.get("destination") or "cloud"
            line += f", for {'' if kind == 'cloud' else kind + ' '}{slot['apiUrl']}"
            line += f" key:{slot.get('keyFingerprint')}" if slot.get("keyFingerprint") else ""
        if slot.get("error"):
            line += f", UNREADABLE: {slot['error']}"
        click.echo(line)
    for record in info["recent_dead_letters"]:
        click.echo(f"  dead letter {record['eventId']}  HTTP {record['status']}: {record['message']}")


@outbox.command()
@_dir_option
@click.option("--api-url", default=None, help="API base URL (else VISION_EVENTS_API_URL / API_BASE_URL / the cloud).")
@click.option("--api-key", default=None, help="API key (else ROBOFLOW_API_KEY).", envvar="ROBOFLOW_API_KEY")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to keep trying.")
@click.option("--destination", type=click.Choice(["cloud", "event_store", "bundle"]), default="cloud",
              show_default=True, help="Which slots to deliver: a sender only takes slots of its own kind.")
@click.option("--event-store-url", default=None,
              help="With --destination event_store (else VISION_EVENTS_EVENT_STORE_URL; key: EVENT_INGESTION_API_KEY).")
@click.option("--bundle-dir", default=None, help="With --destination bundle (else VISION_EVENTS_BUNDLE_DIR).")
def flush(directory: Optional[str], api_url: str, api_key: str, timeout: float, destination: str,
          event_store_url: Optional[str], bundle_dir: Optional[str]) -> None:
    """Deliver everything waiting in the outbox (every slot of --destination's kind that no
    running sender holds, whatever URL and key wrote it), then exit (1 if some is left). A
    refused key (401/403) stops at once: waiting cannot heal it."""
    from ..delivery import Sender, SenderConfig, destinations

    path = _resolve(directory)
    waiting = sum(slot.get("events", 0) for slot in _status(path)["slots"]
                  if (slot.get("destination") or "cloud") == destination)
    try:
        target = destinations.resolve(destination, api_url=api_url, api_key=api_key, event_store_url=event_store_url,
                                      bundle_dir=bundle_dir)
        config = SenderConfig.from_env(outbox_dir=path, shutdown_timeout_s=1.0, adopt_any_slot=True)
        sender = Sender(config=config, destination=target)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    started = time.monotonic()
    click.echo(f"delivering {waiting} event(s) from {path} ...")
    done = _flush_until_refused(sender, timeout)
    stats = sender.stats()
    sender.close(timeout=2.0)
    click.echo(f"sent {stats['sent']}, dead-lettered {stats['dead_lettered']}, still waiting {stats['pending']} "
               f"({time.monotonic() - started:.1f} s)")
    if stats["last_error"]:
        click.echo(f"last error: {stats['last_error']}")
    if not done:
        raise SystemExit(1)


def _flush_until_refused(sender: Any, timeout: float) -> bool:
    """Flush in short steps; give up early when the server refuses the key."""
    deadline = time.monotonic() + timeout
    while True:
        if sender.flush(min(1.0, max(0.0, deadline - time.monotonic())), delivered=True):
            return True
        error = sender.stats()["last_error"] or ""
        if error.startswith(("HTTP 401", "HTTP 403")):
            click.echo(f"the server refuses this key ({error.split(':')[0]}): the events stay in the outbox; "
                       "check --api-key / ROBOFLOW_API_KEY", err=True)
            return False
        if time.monotonic() >= deadline:
            return False


@outbox.command()
@_dir_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(directory: Optional[str], yes: bool) -> None:
    """Delete every waiting event, image and dead letter in slots no running sender holds (they are lost)."""
    from ..delivery import OutboxLockedError, purge_outbox

    path = _resolve(directory)
    waiting = _status(path)["events"]
    if not yes:
        click.confirm(f"Delete {waiting} undelivered event(s) from {path}?", abort=True)
    try:
        removed = purge_outbox(path)
    except OutboxLockedError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"purged {removed} event(s) from {path}")
