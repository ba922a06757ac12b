"""Simulator output files: JSON lines, optionally gzip-compressed (by the ``.gz`` suffix).

One record per line, in emission order, fields in this order::

    {"emit_at":"2026-11-02T00:15:07Z","channel":"readings","key":"<meter id>","payload":{...}}
    {"emit_at":"...","channel":"readings","key":"<meter id>","payload_b64":"<base64>"}

* ``emit_at``: when the device sent it (UTC, ISO 8601); replay paces by it.
* ``channel``: ``readings`` | ``production`` | ``voc``; each maps to one Kafka topic.
* ``key``: the meter or device id (faults target it). The Kafka key is the unit the payload
  names (``contracts.partition_keys.unit_key``), so replays keep each unit on one partition.
* ``payload``: the wire contract's JSON (``contracts/``) exactly as produced, or
  ``payload_b64`` for bytes a fault corrupted on purpose, which are not JSON.

The same seed and scenario give byte-identical files (gzip is written with no name or mtime).
"""

import base64
import gzip
import itertools
import operator
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import IO

from simulators.records import Channel, SimRecord

_LINE = re.compile(
    rb'^\{"emit_at":"([^"]+)","channel":"([a-z]+)","key":"([^"\\]*)","payload(_b64)?":(.*)\}$'
)


@lru_cache(maxsize=8192)
def _timestamp(at: datetime) -> bytes:
    text = at.astimezone(UTC).isoformat()
    return (text.removesuffix("+00:00") + "Z").encode()


_CHANNEL_PARTS = {c: f'","channel":"{c.value}","key":"'.encode() for c in Channel}


def encode_line(record: SimRecord) -> bytes:
    emit_at, channel, key, payload, malformed = record
    if malformed:
        return b'{"emit_at":"%s%s%s","payload_b64":"%s"}\n' % (
            _timestamp(emit_at),
            _CHANNEL_PARTS[channel],
            key.encode(),
            base64.b64encode(payload),
        )
    return b'{"emit_at":"%s%s%s","payload":%s}\n' % (
        _timestamp(emit_at),
        _CHANNEL_PARTS[channel],
        key.encode(),
        payload,
    )


class RecordFileError(ValueError):
    pass


def decode_line(line: bytes, number: int = 0) -> SimRecord:
    match = _LINE.match(line.rstrip(b"\r\n"))
    if match is None:
        raise RecordFileError(
            f"line {number}: not a simulator record (see simulators/record_file.py)"
        )
    emit_at, channel, key, is_b64, payload = match.groups()
    try:
        when = datetime.fromisoformat(emit_at.decode())
        kind = Channel(channel.decode())
        body = base64.b64decode(payload.strip(b'"'), validate=True) if is_b64 else payload
    except ValueError as exc:
        raise RecordFileError(f"line {number}: {exc}") from exc
    if when.tzinfo is None:
        raise RecordFileError(f"line {number}: emit_at has no timezone")
    return SimRecord(when, kind, key.decode(), body, malformed=bool(is_b64))


@contextmanager
def open_for_writing(path: Path) -> Iterator[IO[bytes] | gzip.GzipFile]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw:
        if path.suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
                yield zipped
        else:
            yield raw


_first = operator.itemgetter(0)


def write_records(path: Path, records: Iterable[SimRecord]) -> int:
    """Write every record; return how many (counted in C: this loop runs millions of times)."""
    counter = itertools.count()
    with open_for_writing(path) as out:
        out.writelines(map(encode_line, map(_first, zip(records, counter, strict=False))))
    return next(counter)


def read_records(path: Path) -> Iterator[SimRecord]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield decode_line(line, number)
