"""``vision-events serve`` (also ``python -m vision_events_blocks.server``): run the local
Vision Events server (FastAPI + uvicorn + SQLite).

Everything that can be wrong is checked before anything is printed or written: the keys, the
fault rates, the address (the socket is bound here and handed to uvicorn, so a busy port
fails with one line, before the banner and before a development key is made) and the data
directory. Exit 2 for each, naming the option.
"""
from __future__ import annotations

import errno
import os
import secrets
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

import click

from . import DEFAULT_HOST, DEFAULT_LOOKBACK_DAYS, DEFAULT_PORT

DEV_KEY_FILE = "dev-api-key"
KEYS_ENV_VAR = "VISION_EVENTS_SERVER_API_KEYS"


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


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port``, or a one-line error naming the option."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise click.BadParameter(f"cannot listen on {host!r}: {exc.strerror}", param_hint="--host") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: quick restarts
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise click.BadParameter(
                f"{host}:{port} is already in use (another `vision-events serve`?); stop it or choose "
                f"another port, e.g. --port {port + 1 if 0 < port < 65535 else 8788}", param_hint="--port") from None
        if exc.errno == errno.EACCES:
            raise click.BadParameter(f"no permission to listen on {host}:{port} (ports below 1024 need root)",
                                     param_hint="--port") from None
        raise click.BadParameter(f"cannot listen on {host}:{port}: {exc.strerror or exc}", param_hint="--host") from None
    return sock


def key_specs(options: Sequence[str]) -> List[str]:
    """``--api-key`` values and ``$VISION_EVENTS_SERVER_API_KEYS`` (whitespace-separated): both count."""
    return list(options) + os.environ.get(KEYS_ENV_VAR, "").split()


def ready_data_dir(data_dir: Path) -> Path:
    """The data directory, created, or a one-line error naming it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.BadParameter(f"cannot create {data_dir}: {exc.strerror or exc}", param_hint="--data-dir") from None
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot write in {data_dir}: permission denied", param_hint="--data-dir")
    return data_dir


def _rate(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise click.BadParameter("must be a fraction between 0 and 1")
    return value


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="SQLite database and images. [default: ~/.cache/vision-events-blocks/server]")
@click.option("--api-key", "api_keys", multiple=True, metavar="KEY[:SCOPES]",
              help="Accepted key, repeatable. KEY alone has every scope; KEY:vision-events:read,device:update only "
                   "those; KEY: none. The keys in $VISION_EVENTS_SERVER_API_KEYS (whitespace-separated; keeps them "
                   "out of `ps`) are accepted too. Without any, a development key is made, kept in the data dir "
                   "and printed.")
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

    from .app import ServerConfig, create_app
    from .auth import parse_key_spec
    from .faults import FaultSettings
    from .viewer import viewer_link

    data_dir = (data_dir or default_data_dir()).expanduser()
    dev_key = None
    specs = []
    for index, text in enumerate(key_specs(api_keys)):
        try:
            specs.append(parse_key_spec(text))
        except ValueError as exc:  # the message names the scope, never the key
            where = "--api-key" if index < len(api_keys) else KEYS_ENV_VAR
            raise click.BadParameter(str(exc), param_hint=where) from None
    if fail_rate + rate_limit_rate > 1.0:
        raise click.BadParameter("--fail-rate plus --rate-limit-rate must not exceed 1")
    sock = bind(host, port)  # before the banner and the development key: a busy port changes nothing
    try:
        ready_data_dir(data_dir)
        if not specs:
            key = dev_key = development_key(data_dir)
            specs = [parse_key_spec(key)]
            click.echo(f"Development API key (all scopes, kept in {data_dir / DEV_KEY_FILE}): {key}")
        faults = FaultSettings(fail_rate=fail_rate, latency_ms=latency_ms, rate_limit_rate=rate_limit_rate,
                               retry_after_s=retry_after)
        config = ServerConfig(data_dir=data_dir, api_keys=specs, lookback_days=lookback_days,
                              enable_admin=enable_faults, faults=faults)
        try:
            app = create_app(config)
        except (OSError, sqlite3.Error) as exc:
            raise click.ClickException(f"cannot open the server's data in {data_dir}: {exc}") from None
    except BaseException:
        sock.close()
        raise
    exit_with_parent()
    port = sock.getsockname()[1]
    click.echo(f"Vision Events server on http://{host}:{port} (data: {data_dir}, keys: {len(specs)}, "
               f"lookback: {lookback_days} days{', admin/faults enabled' if enable_faults else ''})", err=False)
    click.echo(f"Point clients at it: export VISION_EVENTS_API_URL=http://{host}:{port}", err=False)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    click.echo(f"Event viewer: {viewer_link(f'http://{shown_host}:{port}', key=dev_key)}"
               + ("" if dev_key else "  (the page asks for an API key)"))
    settings = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")
    uvicorn.Server(settings).run(sockets=[sock])
