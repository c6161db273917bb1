"""The workflow examples in ``workflow_examples/``, loaded by name for tests and the demo.

``load_example("quality_check_line.offline")`` returns the JSON definition as a dict. The
folder sits beside the package in a source checkout (and in an editable install);
``VISION_EVENTS_EXAMPLES_DIR`` points elsewhere.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Dict, List

EXAMPLE_NAMES = ("quality_check_line", "ppe_safety_alerts", "shelf_inventory")


def examples_dir() -> Path:
    directory = Path(os.environ.get("VISION_EVENTS_EXAMPLES_DIR") or Path(__file__).resolve().parents[2] / "workflow_examples")
    if not directory.is_dir():
        raise FileNotFoundError(
            f"workflow examples not found at {directory}; run from a source checkout or set VISION_EVENTS_EXAMPLES_DIR"
        )
    return directory


def load_example(name: str) -> Dict[str, Any]:
    """One example definition; ``name`` without ``.json`` (e.g. ``shelf_inventory.offline``)."""
    path = examples_dir() / f"{name}.json"
    if not path.is_file():
        available = sorted(p.stem for p in examples_dir().glob("*.json"))
        raise FileNotFoundError(f"no workflow example {name!r}; available: {available}")
    return json.loads(path.read_text())


def all_example_names() -> List[str]:
    return sorted(p.stem for p in examples_dir().glob("*.json"))


def with_detections_input(spec: Dict[str, Any], step: str = "detector", input_name: str = "detections") -> Dict[str, Any]:
    """The same workflow with step ``step`` replaced by detections passed in as data.

    For hosts that cannot run the detector (no weights) or keep no state between frames (the
    HTTP server builds new blocks per request, so motion detection never warms up): the
    detections arrive as a ``WorkflowBatchInput`` of kind ``object_detection_prediction``.
    """
    spec = copy.deepcopy(spec)
    removed = [s for s in spec["steps"] if s["name"] == step]
    if not removed:
        raise KeyError(f"workflow has no step named {step!r}")
    detector_inputs = {v[len("$inputs."):] for v in removed[0].values() if isinstance(v, str) and v.startswith("$inputs.")}
    spec["steps"] = [s for s in spec["steps"] if s["name"] != step]
    still_used = json.dumps(spec)
    spec["inputs"] = [i for i in spec["inputs"]
                      if i["name"] not in detector_inputs or f"$inputs.{i['name']}" in still_used]
    spec["inputs"].append({"type": "WorkflowBatchInput", "name": input_name, "kind": ["object_detection_prediction"]})
    text = json.dumps(spec)
    for output in ("predictions", "detections"):
        text = text.replace(f'"$steps.{step}.{output}"', f'"$inputs.{input_name}"')
    return json.loads(text)
