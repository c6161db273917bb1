"""Helpers for the bundle tests: real images, our events, hand-made (hostile) tarballs, the built-in block."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import cv2
import numpy as np

from .factories import make_event

JPEG = cv2.imencode(".jpg", np.full((24, 32, 3), 200, np.uint8))[1].tobytes()
PNG = cv2.imencode(".png", np.full((24, 32, 3), 90, np.uint8))[1].tobytes()
BOX = {"class": "scratch", "x": 10.0, "y": 12.0, "width": 4.0, "height": 6.0, "confidence": 0.75}


def our_event(use_case_id: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
    """A wire event with one image slot (label + box); bytes go separately."""
    return make_event(use_case_id or None, data={"result": "fail", "externalId": "part-1"},
                      **{"deviceId": "line-3-cam", "customMetadata": {"line": "3"},
                         "images": [{"label": "workflow", "objectDetections": [BOX]}], **fields})


def tarball(members: Dict[str, bytes], *, payload: Optional[Dict[str, Any]] = None, links: Optional[Dict[str, str]] = None,
            hardlinks: Optional[Dict[str, str]] = None, gzip: bool = True) -> bytes:
    """A tar(.gz) with the given regular members (+ payload.json, symlinks, hard links)."""
    links, hardlinks = links or {}, hardlinks or {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gzip else "w") as tar:
        items = dict(members)
        if payload is not None:
            items = {"payload.json": json.dumps(payload).encode(), **items}
        for name, content in items.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, target in hardlinks.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.LNKTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def v1_payload(use_case_id: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
    payload = {"bundleFormatVersion": 1, **our_event(use_case_id)}
    payload["images"] = [{"file": "images/out.jpg", "inputFile": "images/in.png", "label": "workflow", "objectDetections": [BOX]}]
    payload.update(fields)
    return payload


FILES = {"images/out.jpg": JPEG, "images/in.png": PNG}


def builtin_bundle_workflow(directory: Path, **step: Any) -> Dict[str, Any]:
    """inference's ``roboflow_core/vision_event_bundle@v1``: one bundle per run, synchronously."""
    return {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"},
                   {"type": "WorkflowBatchInput", "name": "predictions", "kind": ["object_detection_prediction"]}],
        "steps": [{"type": "roboflow_core/vision_event_bundle@v1", "name": "bundle", "target_directory": str(directory),
                   "input_image": "$inputs.image", "output_image": "$inputs.image", "predictions": "$inputs.predictions",
                   "event_type": "quality_check", "qc_result": "fail", "custom_metadata": {"line": "3"},
                   "fire_and_forget": False, "cooldown_seconds": 0, **step}],
        "outputs": [{"type": "JsonField", "name": "bundle", "selector": "$steps.bundle.*"}],
    }


BUILTIN_INIT = {"workflows_core.allow_access_to_file_system": True, "workflows_core.allowed_write_directory": None}


def predictions(*boxes: Dict[str, Any]) -> Dict[str, Any]:
    return {"image": {"width": 32, "height": 24}, "predictions": [
        {"x": b["x"], "y": b["y"], "width": b["width"], "height": b["height"], "confidence": b["confidence"],
         "class": b["class"], "class_id": 0, "detection_id": f"d{i}"} for i, b in enumerate(boxes)]}


def write_builtin_bundles(run_workflow: Any, directory: Path, count: int, **step: Any) -> List[Dict[str, Any]]:
    """``count`` bundles written by the built-in block; its outputs (event_id, bundle_path)."""
    frame = np.full((24, 32, 3), 120, np.uint8)
    outputs = []
    for _ in range(count):
        [result] = run_workflow(builtin_bundle_workflow(directory, **step), {"image": frame, "predictions": [predictions(BOX)]},
                                init_parameters=BUILTIN_INIT)
        assert result["bundle"]["error_status"] is False, result["bundle"]["message"]
        outputs.append(result["bundle"])
    return outputs
