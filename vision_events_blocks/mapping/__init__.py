"""Pure mapping from what a pipeline sees to Vision Events wire data (no I/O, no threads).

* :mod:`.annotations`: ``sv.Detections`` / ``sv.KeyPoints`` / classification dicts ->
  the four annotation lists of an ``EventImage`` (camelCase wire dicts).
* :mod:`.rows`: class names and confidences read with the mapping's fallbacks, and the
  small helpers the blocks call in ``run()`` (``filter_detections``, ``row_class_names``,
  ``count_non_finite``...), so a block decides on exactly what reaches the server.
* :mod:`.masks`: instance masks -> polygon outlines.
* :mod:`.images`: frames -> JPEG bytes for the upload, resized with a reported ``scale``.

The sender runs the conversions (annotations, masks, JPEG) on its own threads, off the
pipeline's hot path; only the ``rows`` helpers run on it, on whole numpy arrays.
"""
from . import annotations, images
from .annotations import *  # noqa: F401,F403  (exactly annotations.__all__)
from .images import *  # noqa: F401,F403

__all__ = [*annotations.__all__, *images.__all__]
