"""The one reading of pydantic's errors (a dict is read as an event by
:func:`~.event_models.validate_event`).

Every layer that shows a validation problem to a person (the server's 400s, the CLI, the
bundle reader, the blocks) says it the same way: ``field.path[3].name: message``, the first
few problems joined with ``;``.

>>> from pydantic import ValidationError
>>> from vision_events_blocks.api.models import validate_event
>>> try:
...     validate_event({"eventId": "e1", "eventType": "alarm", "useCaseId": "uc",
...                     "timestamp": "2026-01-01T00:00:00Z"}, context={"skip_timestamp_window": True})
... except ValidationError as exc:
...     print(error_text(exc))
eventType: Input should be 'quality_check', 'inventory_count', 'safety_alert', 'custom' or 'operator_feedback'
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Sequence

from pydantic import ValidationError

__all__ = ["error_text", "field_path", "problem_text"]

_FIELD_NAME = re.compile(r"[A-Za-z_][\w -]*")
_PREFIXES = ("Value error, ", "Assertion failed, ")


def field_path(loc: Sequence[Any], rename: Optional[Mapping[str, str]] = None) -> str:
    """``('events', 3, 'customMetadata')`` -> ``events[3].customMetadata``.

    Drops pydantic's internal union and function tags (``QualityCheckData``,
    ``function-after[...]``) so that the path reads like the JSON; ``rename`` maps a field
    name to the one the sender used.

    >>> field_path(("events", 3, "images", 0, "sourceId"))
    'events[3].images[0].sourceId'
    """
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _FIELD_NAME.fullmatch(str(part)) and not str(part)[0].isupper():
            name = (rename or {}).get(str(part), str(part))
            text += f".{name}" if text else name
    return text


def problem_text(message: str) -> str:
    """pydantic's message without its ``Value error, `` / ``Assertion failed, `` prefix."""
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    return message


def error_text(exc: ValidationError, limit: Optional[int] = 3, *, root: str = "",
               rename: Optional[Mapping[str, str]] = None, count_rest: bool = True) -> str:
    """The first ``limit`` problems (all when ``None``) as ``field: message``, joined by ``; ``.

    ``root`` is put before every path (``eventData`` for a model validated on its own); past
    the limit, ``(and N more)`` unless ``count_rest`` is false.
    """
    errors = exc.errors()
    shown = errors if limit is None else errors[:limit]
    problems = []
    for err in shown:
        where = field_path(((root,) if root else ()) + tuple(err["loc"]), rename)
        message = problem_text(str(err["msg"]))
        problems.append(f"{where}: {message}" if where else message)
    rest = len(errors) - len(shown)
    return "; ".join(problems) + (f" (and {rest} more)" if rest > 0 and count_rest else "")
