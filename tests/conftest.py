"""Shared, session-scoped fixtures: one local Vision Events server, one Execution Engine import.

Heavy things (the inference import, servers) are started once per session and only when a
test asks for them.
"""
from __future__ import annotations

import os
import tempfile

import pytest

# Offline, closed inference for every test (no version check, no telemetry, no .env pickup).
os.environ.setdefault("DISABLE_VERSION_CHECK", "true")
os.environ.setdefault("OFFLINE_MODE", "true")
os.environ.setdefault("METRICS_ENABLED", "false")
# Senders of the plugin are durable by default, in inference's model cache directory: give the
# session one of its own (hosts started by session fixtures inherit it), and each test another.
os.environ["MODEL_CACHE_DIR"] = tempfile.mkdtemp(prefix="ve-model-cache-")
for _variable in ("VISION_EVENTS_OUTBOX_DIR", "WORKFLOW_BLOCKS_WRITE_DIRECTORY"):
    os.environ.pop(_variable, None)


@pytest.fixture(scope="module", autouse=True)
def _default_outbox_of_its_own(tmp_path_factory):
    """The default outbox location, private to each test module: a backlog never leaks into
    another module, while a module's tests share their process-wide senders as a user's would."""
    previous = os.environ.get("MODEL_CACHE_DIR")
    os.environ["MODEL_CACHE_DIR"] = str(tmp_path_factory.mktemp("model-cache"))
    yield
    os.environ["MODEL_CACHE_DIR"] = previous


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False, help="run the long soak/crash forms")


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if config.getoption("--long"):
        return
    skip_long = pytest.mark.skip(reason="long form: run with --long")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_long)


@pytest.fixture(scope="session")
def local_server(tmp_path_factory):
    """A real local Vision Events server (subprocess, SQLite) shared by the whole session.

    Faults are enabled (but all off) so tests can switch them on through ``set_faults`` and
    must switch them off again (use the ``faults`` fixture for that).
    """
    from vision_events_blocks.server.testing import LocalServer

    with LocalServer(data_dir=tmp_path_factory.mktemp("ve-server"), faults=True) as server:
        yield server


@pytest.fixture
def faults(local_server):
    """Fault control on the shared server, reset to 'no faults' after the test."""
    local_server.set_faults()  # all off
    yield local_server
    local_server.set_faults()


@pytest.fixture
def use_case_id(local_server, request) -> str:
    """A fresh use case per test, so tests never see each other's events."""
    return local_server.create_use_case(f"{request.node.name[:200]}-{os.urandom(3).hex()}")


# ---------------------------------------------------------------- delivery (the sender)
@pytest.fixture
def make_sender(local_server):
    """Build senders for the shared local server with short retry timings; all closed after the test.

    ``make_sender(url=..., key=..., **config)``; config keys are ``SenderConfig`` fields.
    """
    from vision_events_blocks.delivery import Sender, SenderConfig

    made = []

    def make(url=None, key=None, **config):
        settings = dict(retry_initial_s=0.05, retry_max_s=0.5, batch_linger_s=0.05, stats_log_interval_s=3600.0)
        settings.update(config)
        sender = Sender(url or local_server.url, key or local_server.api_key, SenderConfig(**settings))
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.close(timeout=2.0)


# ---------------------------------------------------------------- workflows (the Execution Engine)
@pytest.fixture(scope="session")
def execution_engine():
    """inference's ``ExecutionEngine`` class, imported once, with this plugin registered.

    Imported through ``inference.core.workflows``, whose package init must run before the
    engine's own modules are imported (inference's import-order trap).
    """
    os.environ["WORKFLOWS_PLUGINS"] = "vision_events_blocks"
    from inference.core.workflows.execution_engine.core import ExecutionEngine

    return ExecutionEngine


@pytest.fixture(scope="session")
def run_workflow(execution_engine, local_server):
    """``run_workflow(spec, runtime_parameters, init_parameters=None, serialize_results=False)``.

    The host's API key is the local server's full-scope key unless ``init_parameters``
    override ``workflows_core.api_key``. Compiled engines are cached per definition by inference.
    """

    def run(spec, runtime_parameters, init_parameters=None, serialize_results=False):
        parameters = {"workflows_core.api_key": local_server.api_key}
        parameters.update(init_parameters or {})
        engine = execution_engine.init(workflow_definition=spec, init_parameters=parameters, max_concurrent_steps=2)
        return engine.run(runtime_parameters=runtime_parameters, serialize_results=serialize_results)

    return run


@pytest.fixture
def delivered(local_server):
    """``delivered(use_case_id)``: flush every sender, then every event the server stored."""
    import vision_events_blocks

    def fetch(use_case_id):
        assert vision_events_blocks.flush(timeout=15.0, delivered=True), vision_events_blocks.stats()
        return local_server.events(use_case_id)

    return fetch


# ---------------------------------------------------------------- hosts (inference HTTP server, clips)
@pytest.fixture(scope="session")
def inference_http_server(local_server, tmp_path_factory):
    """The real inference HTTP server (uvicorn subprocess, ~20 s to start) delivering to ``local_server``."""
    from vision_events_blocks.testing.inference_server import InferenceHttpServer

    with InferenceHttpServer(vision_events_api_url=local_server.url,
                             workdir=tmp_path_factory.mktemp("inference-http")) as server:
        yield server


@pytest.fixture(scope="session")
def production_line_clip(tmp_path_factory):
    """(path, truth) of a 120-frame synthetic conveyor clip (mp4v, 640x480): parts (every second one defective), one worker."""
    from vision_events_blocks.demo import clips

    frames, truth = clips.production_line(frames=120)
    return clips.write_clip(tmp_path_factory.mktemp("clips") / "production_line.mp4", frames), truth


@pytest.fixture(scope="session")
def shelf_clip(tmp_path_factory):
    """(path, truth) of a 90-frame synthetic shelf clip: 6 products, three taken away."""
    from vision_events_blocks.demo import clips

    frames, truth = clips.shelf(frames=90)
    return clips.write_clip(tmp_path_factory.mktemp("clips") / "shelf.mp4", frames), truth


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """A private server (with faults) that the module may stop and start: connection-refused
    outages without disturbing the session's server."""
    from support import private_server

    with private_server(tmp_path_factory.mktemp("ve-own-server")) as server:
        yield server


@pytest.fixture(scope="module")
def client(local_server):
    """The project's client with the full-scope key; one per test module, so its pool is reused."""
    from vision_events_blocks.api.client import VisionEventsClient

    with VisionEventsClient(api_key=local_server.api_key, api_url=local_server.url) as c:
        yield c


@pytest.fixture(scope="module")
def raw(local_server):
    """Plain httpx with the full-scope key, for requests the project's client would refuse to send."""
    from support import Raw

    r = Raw(local_server.url, local_server.api_key)
    yield r
    r.close()
