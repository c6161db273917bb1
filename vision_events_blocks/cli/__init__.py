"""The ``vision-events`` command line.

Each sub-command lives in its own module and registers itself on :data:`main`; a module
that fails to import (for example the server without its extra) only loses its command.
"""
from __future__ import annotations

import importlib

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             epilog='\b\nShell completion (bash; zsh_source / fish_source for zsh and fish):\n'
                    '  eval "$(_VISION_EVENTS_COMPLETE=bash_source vision-events)"')
@click.version_option(package_name="vision-events-blocks")
def main() -> None:
    """Vision Events from the command line: query, use cases, the local server, the outbox, the demo."""


# module -> what it adds: query/schema/use-cases (client), serve (server), outbox (delivery), demo, bundle
for _module in ("query", "serve", "outbox", "demo", "bundle"):
    try:
        importlib.import_module(f"{__name__}.{_module}")
    except ModuleNotFoundError as exc:  # not written yet, or an optional extra is missing
        missing = exc.name or ""
        if missing.startswith("vision_events_blocks") and missing != f"{__name__}.{_module}":
            raise  # one of our own modules is missing: a bug, not an optional extra
