"""``python -m vision_events_blocks.cli``: the ``vision-events`` command without an installed script."""
from . import main

main(prog_name="vision-events")
