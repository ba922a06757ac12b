"""A decoded HJ 212 packet, and reading numbers and times out of its values.

Values stay the strings the packet carried (``"1.20"``, ``""``, ``"N"``): what a value means
depends on its field, so the model keeps the text and the readers below interpret it.
"""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from contracts.identifiers import CHINA_STANDARD_TIME
from ingest.hj212.packet import FLAG_ACK_WANTED, FLAG_SPLIT_PACKET

#: The protocol edition in a packet's Flag bits 2+ (1 → 2017, 2 → 2025, others unknown).
Version = Literal["2017", "2025", "unknown"]

# Fixed point as HJ 212 sends it, plus the signs and exponents some loggers use; not Python's
# float() grammar, which also takes "nan", "inf", "1_000" and surrounding spaces.
NUMBER: Final = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def parse_number(text: str) -> float | None:
    """A value as a number: ``None`` when it is empty; ``ValueError`` when it is not a finite
    number (``"N"``, ``"nan"``, ``"1e999"``)."""
    if not text:
        return None
    # float() is the fast path; it also takes what HJ 212 numbers never are ("1_0", " 1",
    # "inf", non-ASCII digits), which the checks after it refuse: the accepted set is exactly
    # NUMBER's (a hypothesis test compares the two)
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if (
        not math.isfinite(number)
        or "_" in text
        or text[0] in _EDGES
        or text[-1] in _EDGES
        or not text.isascii()
    ):
        raise ValueError(f"{text!r} is not a number")
    return number


_EDGES: Final = frozenset(" \t\n\r\f\v")


def parse_cst_time(text: str) -> datetime:
    """An HJ 212 time (``DataTime``, ``SampleTime``: ``yyyyMMddHHmmss`` China Standard Time)
    as an aware datetime. ``ValueError`` says what is wrong with it."""
    if len(text) != 14 or not (text.isascii() and text.isdecimal()):
        raise ValueError("not 14 digits")
    return datetime(
        int(text[0:4]),
        int(text[4:6]),
        int(text[6:8]),
        int(text[8:10]),
        int(text[10:12]),
        int(text[12:14]),
        tzinfo=CHINA_STANDARD_TIME,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodedPacket:
    """One HJ 212 packet as it arrived, checked and taken apart.

    Header fields that the packet leaves out are ``None`` (2005-style packets carry no QN and
    no Flag). ``cp`` holds the plain ``key=value`` items of ``CP=&&...&&`` (``DataTime``,
    ``RtdInterval``...), ``pollutants`` the ``code-Field=value`` items as
    ``{code: {field: value}}``, both in wire order and to be treated as read-only. ``data_time``
    is ``DataTime`` as an aware datetime. ``warnings`` lists what was accepted although it
    departs from HJ 212 (a bare ``\\n``, an over-long data segment...). ``raw`` is the frame as
    received and ``data_segment`` its text from ``QN=`` to the final ``&&``.

    The password travels in ``pw``, ``raw`` and ``data_segment``; ``repr`` shows none of them.
    """

    qn: str | None
    st: str
    cn: str
    pw: str | None = field(repr=False)
    mn: str
    flag: int | None
    pnum: int | None
    pno: int | None
    data_time: datetime | None
    cp: Mapping[str, str]
    pollutants: Mapping[str, Mapping[str, str]]
    warnings: tuple[str, ...]
    raw: bytes = field(repr=False)
    data_segment: str = field(repr=False)

    @property
    def ack_wanted(self) -> bool:
        """Flag bit 0: the sender wants a data reply (``build_reply(packet, "9014")``)."""
        return self.flag is not None and bool(self.flag & FLAG_ACK_WANTED)

    @property
    def split_packet(self) -> bool:
        """Flag bit 1: one packet of a split message, numbered by ``pnum``/``pno``."""
        return self.flag is not None and bool(self.flag & FLAG_SPLIT_PACKET)

    @property
    def version(self) -> Version | None:
        """The edition in Flag bits 2+: ``"2017"``, ``"2025"``, ``"unknown"``; ``None`` without
        a Flag."""
        if self.flag is None:
            return None
        return _VERSIONS.get(self.flag >> 2, "unknown")

    def number(self, code: str, name: str) -> float | None:
        """Pollutant ``code``'s field ``name`` as a number (``number("a24088", "Avg")``);
        ``None`` when absent or empty, ``ValueError`` when not a number."""
        return parse_number(self.pollutants.get(code, {}).get(name, ""))

    def cp_number(self, key: str) -> float | None:
        """The plain CP item ``key`` as a number (``cp_number("RtdInterval")``); ``None`` when
        absent or empty, ``ValueError`` when not a number."""
        return parse_number(self.cp.get(key, ""))

    def sample_time(self, code: str) -> datetime | None:
        """Pollutant ``code``'s ``SampleTime`` as an aware datetime; ``None`` when absent or
        empty (decoding has already rejected one that is not a time)."""
        text = self.pollutants.get(code, {}).get("SampleTime", "")
        return parse_cst_time(text) if text else None


_VERSIONS: Final[dict[int, Version]] = {1: "2017", 2: "2025"}
