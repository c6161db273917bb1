"""The four workflow blocks (import inference; loaded through :func:`load_blocks`).

Builders decide *whether* and *what* to report and output a ``vision_event``; the sink adds
where and which image and hands the event to the process-wide sender.
"""
from __future__ import annotations

from typing import List


def load_blocks() -> List[type]:
    from .inventory_count.v1 import InventoryCountEventBlockV1
    from .quality_check.v1 import QualityCheckEventBlockV1
    from .safety_alert.v1 import SafetyAlertEventBlockV1
    from .sink.v1 import VisionEventsSinkBlockV1

    return [
        VisionEventsSinkBlockV1,
        QualityCheckEventBlockV1,
        SafetyAlertEventBlockV1,
        InventoryCountEventBlockV1,
    ]
