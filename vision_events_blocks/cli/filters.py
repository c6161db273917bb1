"""The ``query`` options' mini-language: pure functions, unit-testable, no I/O.

``--meta`` is the subtle one. The API compares a metadata value only with values stored with
the same type (``shift = 3`` as a number never matches the string ``"3"``), so
:func:`plan_metadata_filters` takes the use case's schema (``vision-events schema``) into
account: without an explicit ``:type`` the stored type wins, and a filter that cannot match
is reported. The API allows ``in``/``not_in`` only for strings; for numbers and booleans
``not_in`` becomes one ``neq`` per value (the same set: ``neq`` is the exact complement of
``eq``), and ``in`` becomes one query per value, merged newest first by the caller.
"""
from __future__ import annotations

import dataclasses
import itertools
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import click

from ..api.models import (
    EVENT_FIELD_COLUMNS,
    MAX_QUERY_LIST_VALUES,
    MAX_QUERY_METADATA_FILTERS,
    METADATA_OPERATORS,
    NUMERIC_EVENT_FIELD_COLUMNS,
)

SYMBOL_OPERATORS = {"=": "eq", "==": "eq", "!=": "neq", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
OPERATOR_SYMBOLS = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "in": "in", "not_in": "not_in"}
WORD_OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in")
METADATA_TYPES = ("string", "number", "boolean")
# ':type' suffixes of --meta; the usual spellings of the three API types are accepted.
TYPE_ALIASES = {
    "string": "string", "str": "string", "text": "string",
    "number": "number", "num": "number", "int": "number", "integer": "number", "float": "number",
    "double": "number", "decimal": "number",
    "boolean": "boolean", "bool": "boolean",
}
MAX_SPLIT_QUERIES = MAX_QUERY_LIST_VALUES
_SYMBOL_EXPR = re.compile(r"^\s*(?P<name>.+?)\s*(?P<op>!=|==|>=|<=|=|>|<)\s*(?P<value>.*?)\s*$")
_WORD_EXPR = re.compile(
    r"^\s*(?P<name>.+?)\s+(?P<op>" + "|".join(sorted(WORD_OPERATORS, key=len, reverse=True)) + r")\s+(?P<value>.*?)\s*$"
)
_TYPE_SUFFIX = re.compile(r"^(?P<body>.*):\s*(?P<type>[A-Za-z]+)\s*\Z", re.S)
_RELATIVE_TIME = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?P<unit>[smhdw])\Z")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expression(text: str, what: str) -> Tuple[str, str, str]:
    """``'name OP value'`` -> ``(name, operator, raw value)``.

    OP is a word (``eq neq gt gte lt lte in not_in``, surrounded by spaces) or a symbol
    (``= == != > >= < <=``). Names may contain spaces (metadata keys can).

    >>> parse_expression("temperature > 70", "--meta")
    ('temperature', 'gt', '70')
    >>> parse_expression("line in A1,B2", "--meta")
    ('line', 'in', 'A1,B2')
    """
    matches = [m for m in (_WORD_EXPR.match(text), _SYMBOL_EXPR.match(text)) if m]
    match = min(matches, key=lambda m: m.start("op")) if matches else None  # the first operator wins
    if not match or not match.group("name") or match.group("value") == "":
        raise click.BadParameter(
            f"{text!r} is not 'NAME OP VALUE'; OP is one of {' '.join(WORD_OPERATORS)} or = != > >= < <=",
            param_hint=what,
        )
    op = match.group("op")
    return match.group("name").strip(), SYMBOL_OPERATORS.get(op, op), match.group("value")


def fits(raw: str, kind: str) -> bool:
    """Whether the text ``raw`` reads as a value of ``kind``."""
    if kind == "string":
        return True
    if kind == "boolean":
        return raw.strip().lower() in ("true", "false")
    try:
        float(raw)
    except ValueError:
        return False
    return raw.strip().lower() not in ("nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity")


def typed(raw: str, kind: str, what: str) -> Any:
    """``raw`` as a ``kind`` value; a clear error naming the option when it is not one."""
    if not fits(raw, kind):
        example = "true/false" if kind == "boolean" else "e.g. 70 or 72.5"
        raise click.BadParameter(f"{raw!r} is not a {kind} ({example})", param_hint=what)
    if kind == "string":
        return raw
    if kind == "boolean":
        return raw.strip().lower() == "true"
    number = float(raw)
    return int(number) if number.is_integer() and re.fullmatch(r"\s*[+-]?\d+\s*", raw) else number


def infer_type(raw: str) -> str:
    """``true``/``false`` -> boolean, a number -> number, anything else -> string."""
    return "boolean" if fits(raw, "boolean") else "number" if fits(raw, "number") else "string"


# --------------------------------------------------------------------------------------------
# --meta
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class MetaSpec:
    """One ``--meta`` option, parsed but not yet typed."""

    text: str
    field: str
    operator: str
    raws: List[str]
    explicit_type: Optional[str]

    @property
    def listed(self) -> bool:
        return self.operator in ("in", "not_in")

    @property
    def negative(self) -> bool:
        return self.operator in ("neq", "not_in")


def parse_meta(text: str) -> MetaSpec:
    """``'field OP value[:type]'``; ``:type`` is ``string``, ``number`` or ``boolean`` (or
    ``str``, ``int``, ``float``, ``bool``...). An unknown ``:word`` stays part of the value."""
    kind: Optional[str] = None
    body = text
    suffix = _TYPE_SUFFIX.match(text)
    if suffix and suffix.group("type").lower() in TYPE_ALIASES:
        kind, body = TYPE_ALIASES[suffix.group("type").lower()], suffix.group("body")
    field, operator, raw = parse_expression(body, "--meta")
    raws = [part.strip() for part in raw.split(",")] if operator in ("in", "not_in") else [raw]
    if any(part == "" for part in raws):
        raise click.BadParameter(f"{text!r}: {operator} takes values separated by commas, e.g. 'line in A1,B2'",
                                 param_hint="--meta")
    if len(raws) > MAX_QUERY_LIST_VALUES:
        raise click.BadParameter(f"{text!r}: at most {MAX_QUERY_LIST_VALUES} values", param_hint="--meta")
    return MetaSpec(text, field, operator, raws, kind)


def _check_operator(spec: MetaSpec, kind: str, why: str) -> None:
    allowed = METADATA_OPERATORS[kind] + (("in", "not_in") if kind != "string" else ())
    if spec.operator in allowed:
        return
    symbol = OPERATOR_SYMBOLS[spec.operator]
    if kind == "string":
        raise click.BadParameter(
            f"{spec.text!r}: {symbol} compares numbers, but {why} a string; strings take = != in not_in "
            f"(add :number to compare as a number)", param_hint="--meta")
    raise click.BadParameter(f"{spec.text!r}: {why} a boolean, which takes only = and !=", param_hint="--meta")


def _stored_as(types: Sequence[str]) -> str:
    return " and ".join(types)


def resolve_meta_type(spec: MetaSpec, stored: Optional[Sequence[str]], use_case: str) -> Tuple[str, List[str]]:
    """The type to filter ``spec`` with, and the notes to show the user.

    ``stored`` is the field's types in the use case's schema (``None``: schema not asked;
    empty: no event has the field).
    """
    notes: List[str] = []
    where = f"use case {use_case}"
    outcome = "excludes no event" if spec.negative else "matches no event"
    if stored is not None and not stored:
        notes.append(f"--meta {spec.text!r}: no event of {where} has custom metadata {spec.field!r}, so this "
                     f"filter {outcome} (`vision-events schema {use_case}` lists the fields)")
    if spec.explicit_type is not None:
        kind = spec.explicit_type
        if stored and kind not in stored:
            notes.append(f"--meta {spec.text!r}: {spec.field!r} is stored as {_stored_as(stored)} in {where}, never "
                         f"as {kind}, so this filter {outcome}; use :{stored[0]} or leave the type out")
        _check_operator(spec, kind, f"':{kind}' makes {spec.raws[0]!r}")
        for raw in spec.raws:
            typed(raw, kind, "--meta")
        return kind, notes
    inferred = infer_type(spec.raws[0])
    if not stored or inferred in stored:
        kind = inferred
    else:
        usable = [k for k in stored if all(fits(raw, k) for raw in spec.raws)]
        if not usable:
            raise click.BadParameter(
                f"{spec.text!r}: {spec.field!r} is stored as {_stored_as(stored)} in {where}, and "
                f"{', '.join(repr(r) for r in spec.raws)} is not a {stored[0]}", param_hint="--meta")
        kind = usable[0]
        notes.append(f"--meta {spec.text!r}: {spec.field!r} is stored as {kind} in {where}: comparing as {kind}")
    why = f"{spec.field!r} is stored as" if stored and kind in stored else f"{spec.raws[0]!r} is"
    _check_operator(spec, kind, why)
    others = [k for k in (stored or ()) if k != kind]
    if others:
        notes.append(f"--meta {spec.text!r}: {spec.field!r} is also stored as {_stored_as(others)} in {where}; "
                     f"those events are not compared (add :{others[0]} for them)")
    return kind, notes


def metadata_items(spec: MetaSpec, kind: str) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """``(filters, alternatives)``: filters to AND; ``alternatives`` (number/boolean ``in``) are
    eq filters of which one must hold, i.e. one query each."""
    values = [typed(raw, kind, "--meta") for raw in spec.raws]
    base = {"field": spec.field, "type": kind}
    if not spec.listed:
        return [dict(base, operator=spec.operator, value=values[0])], []
    if kind == "string":
        return [dict(base, operator=spec.operator, value=values)], []
    unique = list(dict.fromkeys(values))
    if spec.operator == "not_in":
        return [dict(base, operator="neq", value=v) for v in unique], []
    return [], [dict(base, operator="eq", value=v) for v in unique]


def parse_metadata_filter(text: str) -> Dict[str, Any]:
    """``--meta 'field OP value[:type]'`` -> one ``customMetadataFilters`` item (type as written
    or inferred, without the use case's schema).

    >>> parse_metadata_filter("temperature >= 70.5")
    {'field': 'temperature', 'operator': 'gte', 'value': 70.5, 'type': 'number'}
    >>> parse_metadata_filter("batch = 42:string")
    {'field': 'batch', 'operator': 'eq', 'value': '42', 'type': 'string'}
    """
    spec = parse_meta(text)
    kind = spec.explicit_type or infer_type(spec.raws[0])
    values = [typed(raw, kind, "--meta") for raw in spec.raws]
    return {"field": spec.field, "operator": spec.operator, "value": values if spec.listed else values[0], "type": kind}


def plan_metadata_filters(
    texts: Sequence[str], schema: Optional[Mapping[str, Sequence[str]]], use_case: str
) -> Tuple[List[List[Dict[str, Any]]], List[str]]:
    """Every ``--meta`` -> ``(variants, notes)``: one list of ``customMetadataFilters`` per query
    to run (one, unless numbers or booleans use ``in``), and notes for the user."""
    filters: List[Dict[str, Any]] = []
    choices: List[List[Dict[str, Any]]] = []
    notes: List[str] = []
    for text in texts:
        spec = parse_meta(text)
        stored = None if schema is None else list(schema.get(spec.field, ()))
        kind, more = resolve_meta_type(spec, stored, use_case)
        notes.extend(more)
        anded, alternatives = metadata_items(spec, kind)
        filters.extend(anded)
        if alternatives:
            choices.append(alternatives)
    count = len(filters) + len(choices)
    if count > MAX_QUERY_METADATA_FILTERS:
        raise click.BadParameter(f"{count} metadata filters (not_in on numbers counts one per value); the API "
                                 f"takes at most {MAX_QUERY_METADATA_FILTERS}", param_hint="--meta")
    variants = [filters + list(combo) for combo in itertools.product(*choices)]
    if len(variants) > MAX_SPLIT_QUERIES:
        raise click.BadParameter(f"'in' on numbers or booleans runs one query per value: {len(variants)} queries, "
                                 f"at most {MAX_SPLIT_QUERIES}", param_hint="--meta")
    return variants, notes


# --------------------------------------------------------------------------------------------
# --field, context ids, --image-count, times
# --------------------------------------------------------------------------------------------
def parse_event_field_filter(text: str) -> Dict[str, Any]:
    """``--field 'column OP value'`` -> one ``eventFieldFilters`` item (``item_count`` is numeric).

    >>> parse_event_field_filter("result = fail")
    {'column': 'result', 'operator': 'eq', 'value': 'fail'}
    """
    column, operator, raw = parse_expression(text, "--field")
    if column not in EVENT_FIELD_COLUMNS:
        raise click.BadParameter(f"column {column!r} is not one of {', '.join(EVENT_FIELD_COLUMNS)}", param_hint="--field")
    kind = "number" if column in NUMERIC_EVENT_FIELD_COLUMNS else "string"
    if operator in ("in", "not_in"):
        return {"column": column, "operator": operator, "value": [typed(p.strip(), kind, "--field") for p in raw.split(",")]}
    return {"column": column, "operator": operator, "value": typed(raw, kind, "--field")}


def parse_context_filter(text: str) -> Dict[str, str]:
    """``X`` -> eq X; ``!=X`` -> neq X (the context filters allow only these two)."""
    if text.startswith("!="):
        return {"operator": "neq", "value": text[2:]}
    return {"operator": "eq", "value": text}


def parse_image_count(text: str) -> Dict[str, Any]:
    """``OP:N`` (``gte:1``) or a symbol form (``>=1``, ``=0``, ``3``) -> the ``imageCount`` filter."""
    match = re.fullmatch(r"\s*(?:(?P<word>eq|neq|gt|gte|lt|lte):|(?P<sym>!=|==|>=|<=|=|>|<))?\s*(?P<n>\d+)\s*", text)
    if not match:
        raise click.BadParameter(f"{text!r} is not OP:N (e.g. gte:1) or >=N", param_hint="--image-count")
    operator = match.group("word") or SYMBOL_OPERATORS.get(match.group("sym") or "=", "eq")
    return {"operator": operator, "value": int(match.group("n"))}


def parse_time(text: str, what: str, now: Optional[datetime] = None) -> datetime:
    """ISO 8601 (naive means UTC) or a duration ago: ``30m``, ``2h``, ``7d``, ``1w``."""
    relative = _RELATIVE_TIME.match(text.strip())
    if relative:
        try:
            delta = timedelta(**{_UNITS[relative.group("unit")]: float(relative.group("amount"))})
            return (now or datetime.now(timezone.utc)) - delta
        except OverflowError:
            raise click.BadParameter(f"{text!r} reaches before year 1", param_hint=what) from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither ISO 8601 (2024-01-15T10:30:00Z) nor a duration ago (30m, 2h, 7d)", param_hint=what
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
