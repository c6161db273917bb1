"""``python -m vision_events_blocks.server``: same options as ``vision-events serve``."""
from .command import serve

if __name__ == "__main__":
    serve(prog_name="python -m vision_events_blocks.server")
