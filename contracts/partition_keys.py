"""Kafka keys: every topic is partitioned by unit.

A record's key is the enterprise code (统一社会信用代码) of the unit its payload is about, so
one worker sees all of a unit's readings, VOC samples and reports, each meter's in the order
sent, and the unit's rollups are written by one worker at a time. Gateways know the unit from
the decoded payload and key by it directly; senders holding only the bytes (the simulator's
sinks, replays of record files) use ``unit_key``.
"""

from typing import Final

_MARK: Final = b'"enterprise_code":"'


def unit_key(payload: bytes, fallback: str) -> bytes:
    """The key of a contract payload (compact JSON, as ``contracts`` encodes it): its
    ``enterprise_code``. Bytes that name no unit (a payload a fault corrupted on purpose, which
    the worker dead-letters) are keyed by ``fallback``, the meter or device id."""
    start = payload.find(_MARK)
    if start < 0:
        return fallback.encode()
    start += len(_MARK)
    end = payload.find(b'"', start)
    if end <= start:
        return fallback.encode()
    return payload[start:end]
