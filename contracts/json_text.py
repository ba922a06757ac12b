"""Pieces of the contracts' JSON, written the way pydantic writes them, for hot paths that
emit contract JSON without building a model per message (a test holds each such writer
byte-identical to the model's own ``model_dump_json``)."""

from datetime import UTC, datetime
from functools import lru_cache

# Python's repr and the JSON writer behind pydantic agree on the shortest round-trip digits;
# they differ only in exponent notation, which starts outside this range.
SAFE_MIN = 1e-4
SAFE_MAX = 1e15


@lru_cache(maxsize=8192)
def utc_timestamp(at: datetime) -> str:
    """An aware datetime as pydantic writes a UTC one: ``2026-03-02T00:15:00Z``."""
    at = at.astimezone(UTC)
    text = at.strftime("%Y-%m-%dT%H:%M:%S")
    if at.microsecond:
        text += f".{at.microsecond:06d}"
    return text + "Z"


def json_number(value: float | None) -> str | None:
    """A float (or None) as pydantic writes it, or None when only the model can say."""
    if value is None:
        return "null"
    if value == 0:
        return repr(float(value))  # "0.0" or "-0.0", as the model writes them
    if SAFE_MIN <= abs(value) < SAFE_MAX:
        return repr(float(value))
    return None
