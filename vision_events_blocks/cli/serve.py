"""``vision-events serve``: the local server's command, defined next to the server (so that
``python -m vision_events_blocks.server`` needs nothing from the CLI) and registered here."""
from __future__ import annotations

from ..server.command import DEV_KEY_FILE, default_data_dir, development_key, serve  # noqa: F401
from . import main

main.add_command(serve)
