"""Reading request bodies: size limits while streaming, and strict JSON.

:func:`parse_json` refuses what :func:`json.loads` lets through but nothing downstream can
hold: nesting deep enough to exhaust the parser's recursion, and lone UTF-16 surrogates
(``"\\ud800"``), which no UTF-8 database, file or response can encode. Both are 400s naming
the problem, not 500s.
"""
from __future__ import annotations

import json
import re
from typing import Any, Type

from fastapi import Request

from .errors import ApiError

__all__ = ["MAX_JSON_BYTES", "json_object", "parse_json", "read_body"]

MAX_JSON_BYTES = 32 * 1024 * 1024
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    """Any string (key or value) in the parsed document holding a lone surrogate."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def parse_json(raw: bytes | str) -> Any:
    """``json.loads`` that raises ``ValueError`` (with the reason) for every bad document."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    escapes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if _SURROGATE_ESCAPE.search(escapes) and _has_lone_surrogate(value):
        raise ValueError("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid Unicode")
    return value


async def read_body(request: Request, limit: int, what: str, error: Type[ApiError] = ApiError) -> bytes:
    """The whole body, refused with a 413 as soon as it passes ``limit`` bytes (declared or
    streamed: a chunked body is cut off at the limit too)."""
    too_large = error(413, _about(what, f"body is larger than {limit // (1024 * 1024)} MB"))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def json_object(raw: bytes, what: str, error: Type[ApiError] = ApiError) -> dict:
    """The body as a JSON object, or a 400 saying what is wrong with it (``what`` leads the
    message when given)."""
    if what and not raw.strip():
        raise error(400, _about(what, "the body must be a JSON object"))
    try:
        body = parse_json(raw)
    except ValueError as exc:
        raise error(400, _about(what, f"body is not valid JSON ({exc})")) from None
    if not isinstance(body, dict):
        raise error(400, _about(what, f"the body must be a JSON object, not {type(body).__name__}"))
    return body


def _about(what: str, problem: str) -> str:
    return f"{what}: {problem}" if what else problem
