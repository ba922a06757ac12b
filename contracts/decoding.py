"""Turning wire bytes into contract models, with a reason fit for the sender and a kind fit for
a metric label, the same way for every contract."""

from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")


class DecodeError(ValueError):
    """A payload that is not a valid contract message.

    ``kind`` is one of a small fixed set (``not_json``, ``wrong_schema``, ``empty``) fit for a
    metric label; ``reason`` says exactly what was wrong, for the sender and the dead letter.
    """

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def decode_json(adapter: TypeAdapter[T], raw: bytes, error: type[DecodeError]) -> T:
    """Validate ``raw`` JSON with ``adapter``, or raise ``error`` naming the first problem."""
    try:
        return adapter.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        kind = "not_json" if first["type"] == "json_invalid" else "wrong_schema"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        what = "not JSON" if kind == "not_json" else "wrong schema"
        raise error(kind, f"{what}: {where}: {first['msg']}{more}") from exc
