"""The base of every wire model and the rules several models share (numbers, metadata, time).

Request models (:class:`WireModel`) are camelCase on the wire and forbid unknown keys, so a
typo fails with a message naming the field; response models (:class:`ResponseModel`) keep
unknown keys, so a newer server never breaks an older client.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .limits import (
    MAX_ID_LENGTH,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_TEXT_LENGTH,
    METADATA_KEY_PATTERN,
    TIMESTAMP_MAX_AGE,
    TIMESTAMP_MAX_FUTURE,
    MetadataValue,
)

__all__ = ["ResponseModel", "WireModel", "as_utc", "check_timestamp_window", "to_wire", "validate_custom_metadata"]

IdString = Field(min_length=1, max_length=MAX_ID_LENGTH)  # an id: 1-256 characters


class WireModel(BaseModel):
    """Base of every request model: camelCase on the wire, unknown keys rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=False,
    )

    def to_wire(self) -> Dict[str, Any]:
        """The JSON-ready camelCase dict, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ResponseModel(BaseModel):
    """Base of every response model: camelCase, unknown keys kept for forward compatibility."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


def to_wire(model: BaseModel) -> Dict[str, Any]:
    """Serialize any model to its camelCase JSON dict, leaving out ``None`` fields."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")



# --------------------------------------------------------------------------------------------
# Shared validators
# --------------------------------------------------------------------------------------------
def finite(value: float, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not a boolean")
    if not is_finite(value):
        raise ValueError(f"{what} must be a finite number, got {short_repr(value)}")
    return value


def is_finite(value: float) -> bool:
    """A float that is not NaN or infinite; an int that a float can hold (not ``10**400``)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def short_repr(value: Any) -> str:
    """``repr`` cut to 40 characters: a number may have thousands of digits."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def validate_custom_metadata(metadata: Any, field_name: str = "customMetadata") -> Dict[str, MetadataValue]:
    """Check a flat metadata map against spec §9 and return it unchanged.

    >>> validate_custom_metadata({"line": "A1", "temperature": 72.5})
    {'line': 'A1', 'temperature': 72.5}

    Raises ``ValueError`` naming the offending key.
    """
    if not isinstance(metadata, dict):
        raise ValueError(f"{field_name} must be an object of key -> string/number/boolean")
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValueError(f"{field_name} has {len(metadata)} keys; at most {MAX_METADATA_KEYS} are allowed")
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"{field_name} keys must be non-empty strings, got {key!r}")
        if len(key) > MAX_METADATA_KEY_LENGTH:
            raise ValueError(
                f"{field_name} key {key[:40]!r}... is {len(key)} characters; at most {MAX_METADATA_KEY_LENGTH}"
            )
        if not METADATA_KEY_PATTERN.match(key):
            raise ValueError(
                f"{field_name} key {key!r} may only contain letters, digits, '_', '-' and spaces"
            )
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            if not is_finite(value):
                raise ValueError(f"{field_name}.{key} must be a finite number, got {short_repr(value)}")
            continue
        if isinstance(value, str):
            if len(value) > MAX_TEXT_LENGTH:
                raise ValueError(
                    f"{field_name}.{key} is {len(value)} characters; at most {MAX_TEXT_LENGTH} are allowed"
                )
            continue
        kind = "null" if value is None else type(value).__name__
        raise ValueError(f"{field_name}.{key} must be a string, number or boolean, not {kind}")
    return metadata


def check_timestamp_window(timestamp: datetime, now: Optional[datetime] = None) -> datetime:
    """Reject timestamps outside [now - 1 year, now + 1 day] (spec §5.1)."""
    now = now or datetime.now(timezone.utc)
    if timestamp < now - TIMESTAMP_MAX_AGE:
        raise ValueError(f"timestamp {timestamp.isoformat()} is more than one year in the past")
    if timestamp > now + TIMESTAMP_MAX_FUTURE:
        raise ValueError(f"timestamp {timestamp.isoformat()} is more than one day in the future")
    return timestamp


def as_utc(value: datetime) -> datetime:
    """Attach UTC to a naive datetime; convert an aware one to UTC.

    Raises ``ValueError`` (not ``OverflowError``) when the conversion leaves the datetime
    range (e.g. ``0001-01-01T00:00:00+05:00``), so pydantic reports it against the field.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range once converted to UTC") from None

