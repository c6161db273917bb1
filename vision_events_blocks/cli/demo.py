"""``vision-events demo``: the three example workflows on a synthetic production line, end to end.

It starts a local Vision Events server (a subprocess on a free port, a fresh data directory
unless ``--data-dir``), makes a poor network out of it (``--fail-rate``), draws two short
clips (a conveyor with defective parts and a walkway, a shelf being emptied), runs each
offline example through inference's InferencePipeline with a live progress line, waits for
delivery with ``vision_events_blocks.flush()`` and prints what arrived. Exit status 0 means
every event the workflows reported is stored on the server.
"""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import click

from . import main

FLUSH_TIMEOUT_S = 60.0


def _workflows(clip_dir: Path, frames: int, use_case_id: str) -> List[Tuple[str, str, Path, Dict[str, Any]]]:
    """(label, example name, clip, workflow parameters) for each example, drawing the clips."""
    from ..demo import clips

    line_frames, _ = clips.production_line(frames=frames)
    line = clips.write_clip(clip_dir / "production_line.mp4", line_frames)
    shelf_frames, _ = clips.shelf(frames=max(frames // 2, 40), removals=_removals(max(frames // 2, 40)))
    shelf = clips.write_clip(clip_dir / "shelf.mp4", shelf_frames)
    return [
        ("quality check line", "quality_check_line.offline", line,
         {"use_case_id": use_case_id, "defect_template": clips.defect_template(), "batch_id": "demo-batch-1"}),
        ("PPE / walkway safety", "ppe_safety_alerts.offline", line, {"use_case_id": use_case_id}),
        ("shelf inventory", "shelf_inventory.offline", shelf,
         {"use_case_id": use_case_id, "product_template": clips.product_template()}),
    ]


def _removals(frames: int) -> Tuple[int, ...]:
    """Three products taken away, spread over the clip."""
    return tuple(frames * k // 4 for k in (1, 2, 3))


@main.command()
@click.option("--frames", type=click.IntRange(40, 3000), default=150, show_default=True,
              help="Frames in the production-line clip (30 fps); the shelf clip is half as long.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the server's SQLite data and the clips here (default: a fresh temporary directory).")
@click.option("--fail-rate", type=click.FloatRange(0.0, 0.9), default=0.1, show_default=True,
              help="Share of API requests the server fails with 503, to show retries on a poor network.")
@click.option("--keep-server", is_flag=True, help="Leave the server running for exploration until Ctrl+C.")
def demo(frames: int, data_dir: Optional[Path], fail_rate: float, keep_server: bool) -> None:
    """Run the example workflows on a synthetic production line and show what was delivered."""
    for name, value in (("DISABLE_VERSION_CHECK", "true"), ("OFFLINE_MODE", "true"), ("METRICS_ENABLED", "false")):
        os.environ.setdefault(name, value)

    from ..demo.progress import ProgressLine, delivery_totals
    from ..demo.runner import run_workflow_on_video
    from ..demo.summary import DemoSummary, render
    from ..server.testing import LocalServer
    from ..testing.examples import load_example

    work_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="vision-events-demo-"))
    server = LocalServer(data_dir=work_dir / "server", faults=True)
    click.echo(f"Starting the local Vision Events server (data in {server.data_dir}) ...")
    server.start()
    try:
        use_case_id = server.create_use_case(f"production-line-demo-{time.strftime('%H%M%S')}")
        os.environ["VISION_EVENTS_API_URL"] = server.url
        server.clear_request_log()
        server.set_faults(fail_rate=fail_rate)
        click.echo(f"  {server.url}  use case {use_case_id}  (failing {fail_rate:.0%} of requests with 503)")

        click.echo("Drawing the synthetic clips ...")
        workflows = _workflows(work_dir / "clips", frames, use_case_id)
        click.echo("Loading inference (about 10 s) ...")
        _quiet_third_party_logs()
        import inference  # noqa: F401  (the slow import, announced above)
        import vision_events_blocks

        reported: List[str] = []
        errors: List[str] = []
        for label, example, clip, parameters in workflows:
            total = _frame_count(clip)
            progress = ProgressLine(label, total)
            run = run_workflow_on_video(load_example(example), clip, server.api_key, parameters,
                                        on_frame=progress.update)
            progress.done(run)
            reported += run.event_ids
            errors += run.errors
            if run.frames < total:
                errors.append(f"{label}: the pipeline stopped after {run.frames} of {total} frames")

        click.echo(f"Video done; waiting for delivery (vision_events_blocks.flush, up to {FLUSH_TIMEOUT_S:.0f} s) ...")
        flushed = vision_events_blocks.flush(timeout=FLUSH_TIMEOUT_S, delivered=True)
        server.set_faults()
        requests = server.request_log()
        summary = DemoSummary(reported, server.events(use_case_id), delivery_totals(vision_events_blocks.stats()), requests)
        click.echo(render(summary))
        for message in sorted(set(errors)):
            click.echo(f"  error: {message}", err=True)

        _print_how_to_look(server, use_case_id, keep_server)
        ok = flushed and summary.all_delivered and not errors
        if keep_server:
            click.echo("Server left running; press Ctrl+C to stop it.")
            try:
                while server.running:
                    time.sleep(1.0)
            except KeyboardInterrupt:
                pass
    finally:
        server.stop()
        if data_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    sys.exit(0 if ok else 1)


def _quiet_third_party_logs() -> None:
    """Only warnings and errors on the console: inference logs every plugin load at INFO (and
    raises the root level again at each pipeline start) and warns about models the demo never
    uses. The handler's own level holds whatever the loggers are set to."""
    warnings.simplefilter("ignore")
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)


def _frame_count(clip: Path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(clip))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def _print_how_to_look(server: Any, use_case_id: str, kept: bool) -> None:
    """The exact commands; the key is the local server's throwaway key, passed through the environment."""
    from ..server.viewer import FAILED_QUALITY_CHECKS, viewer_link

    url = shlex.quote(server.url)
    click.echo("\nLook at the events" + ("" if kept else " (rerun with --keep-server to keep the server up)") + ":")
    click.echo(f"  export ROBOFLOW_API_KEY={shlex.quote(server.api_key)}   # local throwaway key")
    click.echo(f"  vision-events query --api-url {url} --use-case {use_case_id}")
    click.echo(f"  vision-events query --api-url {url} --use-case {use_case_id} --event-type quality_check "
               f"--field 'result eq fail' --format jsonl")
    click.echo("In a browser (the key rides in the #fragment, which the browser never sends):")
    click.echo(f"  all events:            {viewer_link(server.url, use_case_id, key=server.api_key)}")
    click.echo(f"  failed quality checks: {viewer_link(server.url, use_case_id, FAILED_QUALITY_CHECKS, server.api_key)}")
