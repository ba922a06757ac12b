"""An HJ 212 packet as values: the fields of the data segment and its ``CP=&&...&&`` part.

Both classes check on construction that every field fits the wire, so a packet that exists
can always be encoded: no separator (``;`` ``,`` ``=`` ``&``) inside a value, printable ASCII
only, and the header fields in the forms HJ 212-2017 gives them. Only the 1024-byte limit of
the whole data segment is left to ``encode_packet``, which knows the total.
"""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

#: Flag bit 0 (A): the sender wants a data reply (CN=9014).
FLAG_ACK_WANTED: Final = 0b01
#: Flag bit 1 (D): one packet of a split message; PNUM and PNO follow Flag.
FLAG_SPLIT_PACKET: Final = 0b10
#: Flag bits 2+ hold the protocol version: 1 for HJ 212-2017 (Flag 4–7) ...
FLAG_VERSION_2017: Final = 0b0100
#: ... and 2 for HJ 212-2025 (Flag 8–11).
FLAG_VERSION_2025: Final = 0b1000

#: ST: system codes.
ST_AIR_SOURCE: Final = "31"
ST_WATER_SOURCE: Final = "32"
ST_VOCS: Final = "27"
ST_SYSTEM_REPLY: Final = "91"

#: CN: command codes for uploaded data.
CN_REALTIME_DATA: Final = "2011"
CN_MINUTE_DATA: Final = "2051"
CN_HOURLY_DATA: Final = "2061"
CN_DAILY_DATA: Final = "2031"
#: CN: replies the platform sends, and the vendor heartbeat some loggers send.
CN_NOTICE_REPLY: Final = "9013"
CN_DATA_REPLY: Final = "9014"
CN_HEARTBEAT: Final = "9021"

_QN = re.compile(r"\d{17}")
_ST = re.compile(r"\d{2}")
_CN = re.compile(r"\d{4}")
_MN = re.compile(r"[A-Za-z0-9]{1,24}")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_CODE = re.compile(r"[A-Za-z0-9]+")
_SEPARATORS = frozenset(";,=&")
# printable ASCII without the separators: the fast check; _check_value explains a failure
_VALUE = re.compile(r"[ -%'-+\--:<>-~]*")


def format_number(value: float, decimals: int = 4) -> str:
    """A number as HJ 212 values carry it: fixed point, never an exponent, at most ``decimals``
    decimals, trailing zeros trimmed (``1.2``, ``100``, ``0.0001``, ``-3.5``; ``-0`` is ``0``)."""
    if isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"HJ 212 carries finite numbers only, not {value!r}")
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _check(pattern: re.Pattern[str], value: str, what: str) -> None:
    if not pattern.fullmatch(value):
        raise ValueError(f"{what} {value!r} does not fit HJ 212 (expected {pattern.pattern})")


def _check_value(value: str, what: str, *, secret: bool = False) -> None:
    """Values are printable ASCII without the separators ``; , = &``; empty is allowed.

    A ``secret`` value (the password) is not quoted in the error."""
    if _VALUE.fullmatch(value):
        return
    quoted = "" if secret else f" {value!r}"
    if not (value.isascii() and value.isprintable()):
        raise ValueError(f"{what}{quoted} is not printable ASCII")
    separators = _SEPARATORS.intersection(value)
    if separators:
        shown = " ".join(sorted(separators))
        raise ValueError(f"{what}{quoted} contains HJ 212 separators: {shown}")


@dataclass(frozen=True, slots=True)
class CpSegment:
    """The data area between ``CP=&&`` and ``&&``, in wire order.

    ``plain`` holds ``key=value`` items (``DataTime=20260101080000``); ``pollutants`` holds,
    per pollutant code, its ``code-Field=value`` items (``a24088-Avg=1.2``). Plain items come
    first, then one ``;``-separated group per pollutant with its fields separated by ``,``.
    Values are strings exactly as they go on the wire (see ``format_number``); empty is allowed.

    Stored as tuples of pairs so the segment is immutable and hashable; build it from
    mappings with ``CpSegment.of``.
    """

    plain: tuple[tuple[str, str], ...] = ()
    pollutants: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def __post_init__(self) -> None:
        for key, value in self.plain:
            _check(_NAME, key, "CP key")
            _check_value(value, f"CP value of {key}")
        for code, fields in self.pollutants:
            _check(_CODE, code, "pollutant code")
            for field, value in fields:
                _check(_NAME, field, f"field name of {code}")
                _check_value(value, f"value of {code}-{field}")

    @classmethod
    def of(
        cls,
        plain: Mapping[str, str] | None = None,
        pollutants: Mapping[str, Mapping[str, str]] | None = None,
    ) -> "CpSegment":
        """A segment from ``{key: value}`` and ``{code: {field: value}}``, in their order."""
        return cls(
            plain=tuple((plain or {}).items()),
            pollutants=tuple(
                (code, tuple(fields.items())) for code, fields in (pollutants or {}).items()
            ),
        )

    def pollutant(self, code: str) -> dict[str, str]:
        """The fields of pollutant ``code`` as ``{field: value}`` (empty if it is absent)."""
        for candidate, fields in self.pollutants:
            if candidate == code:
                return dict(fields)
        return {}

    def wire(self) -> str:
        """The text between ``CP=&&`` and ``&&``."""
        groups = [f"{key}={value}" for key, value in self.plain]
        groups.extend(
            ",".join(f"{code}-{field}={value}" for field, value in fields)
            for code, fields in self.pollutants
        )
        return ";".join(groups)


@dataclass(frozen=True, slots=True)
class Packet:
    """The data segment of one HJ 212 packet.

    ``qn`` (request id, ``yyyyMMddHHmmssZZZ`` China Standard Time), ``pw`` and ``flag`` are
    ``None`` in 2005-style packets, which omit them. ``pnum``/``pno`` (packet count and this
    packet's number, from 1) are given together, and when ``flag`` is given exactly when its
    split bit (``FLAG_SPLIT_PACKET``) is set.
    """

    qn: str | None
    st: str
    cn: str
    pw: str | None
    mn: str
    flag: int | None
    cp: CpSegment
    pnum: int | None = None
    pno: int | None = None

    def __post_init__(self) -> None:
        if self.qn is not None:
            _check(_QN, self.qn, "QN")
        _check(_ST, self.st, "ST")
        _check(_CN, self.cn, "CN")
        if self.pw is not None:
            _check_value(self.pw, "PW", secret=True)
        _check(_MN, self.mn, "MN")
        if self.flag is not None and not 0 <= self.flag <= 0xFF:
            raise ValueError(f"Flag is one byte (0..255), not {self.flag}")
        if (self.pnum is None) != (self.pno is None):
            raise ValueError("PNUM and PNO go together: give both or neither")
        if self.pnum is not None and self.pno is not None and not 1 <= self.pno <= self.pnum:
            raise ValueError(f"PNO must be 1..PNUM, not PNO={self.pno} of PNUM={self.pnum}")
        if self.flag is not None and bool(self.flag & FLAG_SPLIT_PACKET) != (self.pnum is not None):
            raise ValueError(
                f"Flag={self.flag} {'sets' if self.flag & FLAG_SPLIT_PACKET else 'clears'} the"
                f" split bit but PNUM/PNO are {'absent' if self.pnum is None else 'present'}"
            )
