"""The inference HTTP server's ASGI app, built the way inference's Docker image builds it.

``inference server start`` needs Docker; this module lets plain uvicorn serve the same app:
``uvicorn vision_events_blocks.testing.inference_app:app`` (run it from a directory that holds
``inference/landing/out/static`` and ``inference/landing/out/_next/static``, which the app mounts).
"""
from inference.core.cache import cache
from inference.core.env import ACTIVE_LEARNING_ENABLED, MAX_ACTIVE_MODELS
from inference.core.interfaces.http.http_api import HttpInterface
from inference.core.managers.active_learning import BackgroundTaskActiveLearningManager
from inference.core.managers.base import ModelManager
from inference.core.managers.decorators.fixed_size_cache import WithFixedSizeCache
from inference.core.registries.roboflow import RoboflowModelRegistry
from inference.models.utils import ROBOFLOW_MODEL_TYPES

_registry = RoboflowModelRegistry(ROBOFLOW_MODEL_TYPES)
_manager = (
    BackgroundTaskActiveLearningManager(model_registry=_registry, cache=cache)
    if ACTIVE_LEARNING_ENABLED
    else ModelManager(model_registry=_registry)
)
app = HttpInterface(WithFixedSizeCache(_manager, max_size=MAX_ACTIVE_MODELS)).app
