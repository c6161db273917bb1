"""``vision-events serve``: run the local Vision Events server (FastAPI + uvicorn + SQLite)."""
from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

import click

from ..server import DEFAULT_HOST, DEFAULT_LOOKBACK_DAYS, DEFAULT_PORT
from . import main

DEV_KEY_FILE = "dev-api-key"


def default_data_dir() -> Path:
    """``$XDG_CACHE_HOME/vision-events-blocks/server`` (``~/.cache/...`` by default)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "vision-events-blocks" / "server"


def development_key(data_dir: Path) -> str:
    """The data dir's development key, made once so that restarts keep it."""
    path = data_dir / DEV_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(f"dev-{secrets.token_urlsafe(24)}\n")
        os.chmod(path, 0o600)
    return path.read_text().strip()


def exit_with_parent() -> None:
    """Stop (SIGTERM to ourselves) once the process named by $VISION_EVENTS_SERVER_PARENT_PID
    is gone, so a test run that is killed never leaves servers behind (set by LocalServer)."""
    parent = os.environ.get("VISION_EVENTS_SERVER_PARENT_PID", "")
    if not parent.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _rate(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise click.BadParameter("must be a fraction between 0 and 1")
    return value


@main.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="SQLite database and images. [default: ~/.cache/vision-events-blocks/server]")
@click.option("--api-key", "api_keys", multiple=True, envvar="VISION_EVENTS_SERVER_API_KEYS", metavar="KEY[:SCOPES]",
              help="Accepted key, repeatable. KEY alone has every scope; KEY:vision-events:read,device:update only "
                   "those; KEY: none. Also read (whitespace-separated) from $VISION_EVENTS_SERVER_API_KEYS. "
                   "Without any, a development key is made, kept in the data dir and printed.")
@click.option("--lookback-days", default=DEFAULT_LOOKBACK_DAYS, show_default=True, type=click.IntRange(1, 3650),
              help="Retention window: older events are never returned.")
@click.option("--fail-rate", default=0.0, callback=_rate, help="Fraction of API requests answered 503.")
@click.option("--latency-ms", default=0, type=click.IntRange(0), help="Latency added to every API request.")
@click.option("--rate-limit-rate", default=0.0, callback=_rate, help="Fraction of API requests answered 429.")
@click.option("--retry-after", default=1.0, type=click.FloatRange(0), help="Retry-After seconds sent with 429s.")
@click.option("--enable-faults", is_flag=True,
              help="Enable /_admin/faults (change faults at run time) and /_admin/requests (request log).")
@click.option("--log-level", default="info", type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, data_dir: Optional[Path], api_keys: Sequence[str], lookback_days: int,
          fail_rate: float, latency_ms: int, rate_limit_rate: float, retry_after: float,
          enable_faults: bool, log_level: str) -> None:
    """Run a local Vision Events server: the whole API, offline, on SQLite.

    Point clients at it with VISION_EVENTS_API_URL=http://HOST:PORT.
    """
    import uvicorn

    from ..server.app import ServerConfig, create_app
    from ..server.auth import parse_key_spec
    from ..server.faults import FaultSettings
    from ..server.viewer import viewer_link

    data_dir = (data_dir or default_data_dir()).expanduser()
    try:
        specs = [parse_key_spec(k) for k in api_keys]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--api-key") from None
    if fail_rate + rate_limit_rate > 1.0:
        raise click.BadParameter("--fail-rate plus --rate-limit-rate must not exceed 1")
    dev_key = None
    if not specs:
        key = dev_key = development_key(data_dir)
        specs = [parse_key_spec(key)]
        click.echo(f"Development API key (all scopes, kept in {data_dir / DEV_KEY_FILE}): {key}")
    faults = FaultSettings(fail_rate=fail_rate, latency_ms=latency_ms, rate_limit_rate=rate_limit_rate,
                           retry_after_s=retry_after)
    config = ServerConfig(data_dir=data_dir, api_keys=specs, lookback_days=lookback_days,
                          enable_admin=enable_faults, faults=faults)
    app = create_app(config)
    exit_with_parent()
    click.echo(f"Vision Events server on http://{host}:{port} (data: {data_dir}, keys: {len(specs)}, "
               f"lookback: {lookback_days} days{', admin/faults enabled' if enable_faults else ''})", err=False)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    click.echo(f"Event viewer: {viewer_link(f'http://{shown_host}:{port}', key=dev_key)}"
               + ("" if dev_key else "  (the page asks for an API key)"))
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")
