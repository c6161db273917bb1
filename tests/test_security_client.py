"""Security of the client: the API key stays secret, TLS is verified by default.

The key may only ever travel in the ``Authorization`` header. These tests drive the real
client against the real local server (and a self-signed HTTPS server on loopback) and look
for the key everywhere else: reprs, exception messages and tracebacks, request URLs and every
log record at DEBUG (ours, httpx's and httpcore's).
"""
from __future__ import annotations

import datetime as dt
import http.server
import io
import ipaddress
import logging
import ssl
import threading
import traceback
import uuid
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from support import make_event
from vision_events_blocks.api import errors
from vision_events_blocks.api.client import VisionEventsClient, resolve_api_key
from vision_events_blocks.api.secrets import ApiKey

pytestmark = pytest.mark.security

WIRE_LOGGERS = ("", "httpx", "httpcore", "vision_events_blocks", "hpack", "urllib3")
JPEG_1x1 = cv2.imencode(".jpg", np.zeros((1, 1, 3), np.uint8))[1].tobytes()


@contextmanager
def captured_logs():
    """Every record of every logger at DEBUG, formatted with its arguments."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    saved = {}
    for name in WIRE_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def exception_text(exc: BaseException) -> str:
    """Everything an exception can print: message, repr, args, the chained causes' traceback."""
    parts = [str(exc), repr(exc), repr(exc.args), "".join(traceback.format_exception(exc))]
    parts.extend(repr(v) for v in vars(exc).values())
    return "\n".join(parts)


def httpx_clients_inside(obj) -> list:
    """The httpx clients a client object holds (whatever its private attribute names are)."""
    found = []
    for value in vars(obj).values():
        if isinstance(value, (httpx.Client, httpx.AsyncClient)):
            found.append(value)
    return found


def ssl_context_of(http_client: httpx.Client) -> ssl.SSLContext:
    transport = http_client._transport  # httpx 0.28: HTTPTransport -> httpcore pool -> context
    return transport._pool._ssl_context


def event(use_case_id: str, **extra) -> dict:
    return make_event(use_case_id, "custom", data={"value": "x"}, **extra)


# ------------------------------------------------------------------------------------------
# The key stays out of reprs, logs, URLs and exceptions
# ------------------------------------------------------------------------------------------
def test_key_never_in_repr_of_key_or_client(local_server):
    key = local_server.api_key
    client = VisionEventsClient(api_key=key, api_url=local_server.url)
    try:
        for text in (repr(client), str(client), repr(vars(client)), repr(resolve_api_key(key))):
            assert key not in text
        assert repr(ApiKey(key)) == "ApiKey('***')"
    finally:
        client.close()


def test_key_from_environment_is_masked(monkeypatch):
    monkeypatch.setenv("ROBOFLOW_API_KEY", "env-secret-key-123")
    resolved = resolve_api_key()
    assert isinstance(resolved, ApiKey)
    assert "env-secret-key-123" not in repr(resolved) + str(resolved)
    assert resolved.reveal() == "env-secret-key-123"


def test_key_never_in_debug_logs_urls_or_errors_of_a_full_session(local_server, use_case_id):
    """A whole session (upload, create, batch, query, errors) logs no key, good or bad."""
    good = local_server.api_key
    bad = "wrong-key-" + uuid.uuid4().hex
    read_only = local_server.key_with_scopes("vision-events:read")
    urls = []

    def remember_url(request: httpx.Request) -> None:
        urls.append(str(request.url))

    with captured_logs() as logs:
        with VisionEventsClient(api_key=good, api_url=local_server.url) as client:
            for http_client in httpx_clients_inside(client):
                http_client.event_hooks["request"].append(remember_url)
            upload = client.upload_image(JPEG_1x1, name="frame.jpg", metadata={"camera": "cam-1"})
            client.create_event(event(use_case_id, images=[{"sourceId": upload.source_id}]))
            client.create_events([event(use_case_id) for _ in range(3)])
            assert len(list(client.iter_events(use_case_id=use_case_id))) == 4
            client.list_use_cases()
            client.get_custom_metadata_schema(use_case_id)
            with pytest.raises(errors.BadRequestError) as bad_request:
                client.create_event(event(use_case_id, eventType="custom", useCaseId="no-such-use-case"))
        failures = [bad_request.value]
        with VisionEventsClient(api_key=bad, api_url=local_server.url) as client:
            with pytest.raises(errors.AuthenticationError) as unauthenticated:
                client.create_event(event(use_case_id))
            failures.append(unauthenticated.value)
        with VisionEventsClient(api_key=read_only, api_url=local_server.url) as client:
            with pytest.raises(errors.PermissionDeniedError) as forbidden:
                client.create_event(event(use_case_id))
            failures.append(forbidden.value)
        # Nothing listens on port 9 of loopback: a transport error.
        with VisionEventsClient(api_key=good, api_url="http://127.0.0.1:9") as client:
            with pytest.raises(errors.TransportError) as refused:
                client.list_use_cases()
            failures.append(refused.value)

    text = logs.getvalue()
    assert "HTTP Request" in text or "httpcore" in text, "DEBUG logging was not captured"
    for secret in (good, bad, read_only):
        assert secret not in text
        for url in urls:
            assert secret not in url
        for failure in failures:
            assert secret not in exception_text(failure)
    assert urls, "the client's httpx requests were not observed"


def test_api_key_is_not_accepted_in_the_query_string(local_server):
    """The client never puts the key in a URL; the server does not invite it either."""
    response = httpx.get(f"{local_server.url}/vision-events/use-cases", params={"api_key": local_server.api_key})
    assert response.status_code == 401


# ------------------------------------------------------------------------------------------
# TLS
# ------------------------------------------------------------------------------------------
def make_self_signed_cert(directory: Path) -> tuple:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class _JsonHandler(http.server.BaseHTTPRequestHandler):
    seen_authorization: list = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).seen_authorization.append(self.headers.get("Authorization"))
        body = b'{"useCases": [], "lookbackDays": 14}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def self_signed_server(tmp_path_factory):
    cert, key = make_self_signed_cert(tmp_path_factory.mktemp("tls"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JsonHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_tls_is_verified_by_default():
    client = VisionEventsClient(api_key="k", api_url="https://api.roboflow.com")
    try:
        http_clients = httpx_clients_inside(client)
        assert http_clients, "the client holds no httpx client to inspect"
        for http_client in http_clients:
            context = ssl_context_of(http_client)
            assert context.verify_mode == ssl.CERT_REQUIRED
            assert context.check_hostname is True
    finally:
        client.close()


def test_self_signed_https_fails_with_a_clear_transport_error_and_sends_no_key(self_signed_server):
    _JsonHandler.seen_authorization.clear()
    secret = "tls-secret-" + uuid.uuid4().hex
    with VisionEventsClient(api_key=secret, api_url=self_signed_server) as client:
        with pytest.raises(errors.TransportError) as failure:
            client.list_use_cases()
    message = str(failure.value)
    assert "certificate" in message.lower() or "ssl" in message.lower() or "tls" in message.lower(), message
    assert secret not in exception_text(failure.value)
    assert _JsonHandler.seen_authorization == [], "the key crossed an unverified TLS connection"


def test_verify_false_is_an_explicit_opt_out(self_signed_server):
    with VisionEventsClient(api_key="k", api_url=self_signed_server, verify=False) as client:
        assert client.list_use_cases().use_cases == []
