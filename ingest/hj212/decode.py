"""Decoding HJ 212 frames (pure, no IO): liberal in what it accepts, exact about what was wrong.

Real data loggers depart from HJ 212 in known ways (DOMAIN.md §6, "Field reality"). What can be
read without guessing is accepted, and a warning on the packet says what departed from the
standard: a missing or bare ``\\n`` line end, an over-long data segment whose CRC is correct,
2005-style packets without QN and Flag, header fields in any order or spelled in another case,
trailing ``;``, empty values. What would need a guess is rejected with an ``Hj212Error`` whose
kind is a metric label and whose reason says exactly what was wrong.

Three things are strict on purpose. The CRC: a vendor's other check code (``CrcVariant``) is
accepted only from a device configured with it, and otherwise named in the reason. The length
field: a mismatch is an error unless the caller passes ``lenient_length``. And QN, ST, CN and MN
must have the forms the encoder gives them, so every decoded packet can be answered
(``build_reply``) and routed by its device id.
"""

import re
from datetime import datetime
from typing import Final

from ingest.hj212.crc import CrcVariant
from ingest.hj212.decoded import DecodedPacket, parse_cst_time
from ingest.hj212.encode import MAX_DATA_SEGMENT_BYTES
from ingest.hj212.errors import Hj212Error

# The encoder's own patterns: what decodes can be encoded back (replies echo QN and MN).
from ingest.hj212.packet import _CN, _MN, _QN, _ST, FLAG_SPLIT_PACKET

__all__ = ["MAX_FRAME_BYTES", "DecodedPacket", "Hj212Error", "decode_frame"]

#: The longest frame a 4-digit length field can describe: ``##`` + length + 9999 bytes of data
#: + CRC + ``\r\n``. Anything longer is rejected before it is looked at.
MAX_FRAME_BYTES: Final = 2 + 4 + 9999 + 4 + 2
_SHORTEST_FRAME: Final = 2 + 4 + 4
_HEX4: Final = re.compile(r"[0-9A-Fa-f]{4}")
_HEADER_NAMES: Final = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")
_BY_UPPER_CASE: Final = {name.upper(): name for name in _HEADER_NAMES}
_SHOWN_CHARACTERS: Final = 40


def decode_frame(
    raw: bytes,
    *,
    crc_variant: CrcVariant = CrcVariant.STANDARD,
    lenient_length: bool = False,
) -> DecodedPacket:
    """Decode one frame, ``##`` to ``\\r\\n``, into a ``DecodedPacket``.

    ``crc_variant`` is the check code the device is configured to send; ``lenient_length``
    accepts a length field that disagrees with the data segment (with a warning). Raises
    ``Hj212Error`` and nothing else, whatever the bytes.
    """
    if len(raw) > MAX_FRAME_BYTES:
        raise Hj212Error(
            "too_long",
            f"the frame is {len(raw)} bytes, longer than any HJ 212 frame can be"
            f" ({MAX_FRAME_BYTES}: a 4-digit length field counts at most 9999 bytes of data)",
        )
    warnings: list[str] = []
    frame = _without_line_end(raw, warnings)
    text = _ascii_text(frame)
    data, data_bytes = _data_segment(text, frame, lenient_length, warnings)
    _check_crc(data_bytes, text[-4:], crc_variant)
    if len(data) > MAX_DATA_SEGMENT_BYTES:
        warnings.append(
            f"the data segment is {len(data)} bytes, {len(data) - MAX_DATA_SEGMENT_BYTES} over"
            f" HJ 212's limit of {MAX_DATA_SEGMENT_BYTES} (accepted: its CRC is correct)"
        )
    cp_at = data.find("CP=&&")
    if cp_at < 0:
        raise Hj212Error("header", "the data segment has no CP=&& (the start of its data area)")
    if cp_at and data[cp_at - 1] != ";":
        raise Hj212Error("header", f"no ';' between the header and CP=&& (offset {6 + cp_at})")
    if len(data) < cp_at + 7:  # "CP=&&&": the only && after CP= is the one that opens it
        raise Hj212Error(
            "cp_grammar", "the data segment does not end in && (CP=&&...&& is not closed)"
        )
    header = _header_fields(data[: cp_at - 1] if cp_at else "", warnings)
    cp, pollutants = _cp_items(data[cp_at + 5 : -2], warnings)
    return _packet(header, cp, pollutants, warnings, bytes(raw), data)


def _without_line_end(raw: bytes, warnings: list[str]) -> bytes:
    if raw.endswith(b"\r\n"):
        return raw[:-2]
    if raw.endswith(b"\n"):
        warnings.append("the frame ends in a bare \\n, not \\r\\n")
        return raw[:-1]
    if raw.endswith(b"\r"):
        warnings.append("the frame ends in a bare \\r, not \\r\\n")
        return raw[:-1]
    if raw:
        warnings.append("the frame has no \\r\\n at its end")
    return raw


def _ascii_text(frame: bytes) -> str:
    try:
        text = frame.decode("ascii")
    except UnicodeDecodeError as exc:
        raise Hj212Error(
            "encoding",
            f"byte 0x{frame[exc.start]:02X} at offset {exc.start} is not ASCII:"
            " HJ 212 frames are ASCII text",
        ) from None
    if not text.isprintable():
        offset, char = next((i, c) for i, c in enumerate(text) if not c.isprintable())
        if char in "\r\n":
            raise Hj212Error(
                "framing",
                f"a line break ({char!r}) at offset {offset} inside the frame:"
                " one frame per line, ending in \\r\\n",
            )
        raise Hj212Error(
            "encoding",
            f"control byte 0x{ord(char):02X} at offset {offset}: HJ 212 frames are printable ASCII",
        )
    return text


def _data_segment(
    text: str, frame: bytes, lenient_length: bool, warnings: list[str]
) -> tuple[str, bytes]:
    """The data segment between the length field and the CRC, as text and as bytes."""
    if not text:
        raise Hj212Error("framing", "the frame is empty")
    if not text.startswith("##"):
        raise Hj212Error("framing", f"the frame starts with {text[:2]!r}, not '##'")
    if len(text) < _SHORTEST_FRAME:
        raise Hj212Error(
            "framing",
            f"the frame is {len(text)} bytes without its line end; the shortest is"
            f" {_SHORTEST_FRAME} (## + 4-digit length + 4-hex CRC)",
        )
    length_field = text[2:6]
    if not length_field.isdecimal():
        raise Hj212Error(
            "framing", f"the length field {_shown(length_field)} is not 4 decimal digits"
        )
    crc_field = text[-4:]
    if not _HEX4.fullmatch(crc_field):
        # quoted only after the data area's closing &&: in a cut-off frame these could be the
        # password's last characters
        shown = f" {crc_field!r}" if text[-6:-4] == "&&" else ""
        raise Hj212Error(
            "framing", f"the frame does not end in a 4-hex-digit CRC{shown} (before its line end)"
        )
    data = text[6:-4]
    if int(length_field) != len(data):
        reason = f"the length field says {length_field}, the data segment is {len(data)} bytes"
        if not lenient_length:
            raise Hj212Error("length_mismatch", reason)
        warnings.append(f"{reason} (accepted: lenient_length)")
    if not data.endswith("&&"):
        # checked before the CRC so that a cut-off frame is named as one, and the CRC reason
        # never quotes characters that may be the password's
        raise Hj212Error(
            "cp_grammar", "the data segment does not end in && (CP=&&...&& is not closed)"
        )
    return data, frame[6:-4]


def _check_crc(data: bytes, crc_field: str, variant: CrcVariant) -> None:
    said = int(crc_field, 16)
    computed = variant.compute(data)
    if said == computed:
        return
    reason = f"CRC mismatch: packet says {crc_field}, computed {computed:04X}"
    if variant is not CrcVariant.STANDARD:
        reason += f" as {variant.description}"
    for other in CrcVariant:
        if other is not variant and other.compute(data) == said:
            reason += (
                f" (it matches {other.description}:"
                " configure the device's crc_variant if that is expected)"
            )
            break
    raise Hj212Error("crc_mismatch", reason)


def _shown(text: str) -> str:
    """``text`` quoted for a message, shortened; not at all when it may hold a password."""
    if "PW" in text.upper():
        return "(not shown: it may hold a password)"
    if len(text) > _SHOWN_CHARACTERS:
        text = text[: _SHOWN_CHARACTERS - 3] + "..."
    return repr(text)


def _header_fields(header: str, warnings: list[str]) -> dict[str, str]:
    """``{name: value}`` for the header fields HJ 212 names, in any order and case."""
    fields: dict[str, str] = {}
    if not header:
        return fields
    for item in header.split(";"):
        if not item:
            warnings.append("an empty header field (';;') was skipped")
            continue
        key, equals, value = item.partition("=")
        if not equals:
            raise Hj212Error("header", f"the header field {_shown(item)} has no '='")
        name = key if key in _HEADER_NAMES else _BY_UPPER_CASE.get(key.upper())
        if name is None:
            warnings.append(f"the header field {_shown(key)} is not HJ 212's and was ignored")
            continue
        if name != key:
            warnings.append(f"the header field {key!r} was read as {name}")
        if name in fields:
            raise Hj212Error("header", f"{name} appears twice in the header")
        fields[name] = value
    return fields


def _required(fields: dict[str, str], name: str, pattern: re.Pattern[str], form: str) -> str:
    value = fields.get(name)
    if value is None:
        raise Hj212Error("header", f"the header has no {name}")
    if not pattern.fullmatch(value):
        shown = "empty" if not value else f"{_shown(value)}, not {form}"
        raise Hj212Error("header", f"{name} is {shown}")
    return value


def _optional(fields: dict[str, str], name: str, warnings: list[str]) -> str | None:
    value = fields.get(name)
    if value == "":
        warnings.append(f"{name} is empty and was taken as absent")
        return None
    return value


def _whole_number(name: str, value: str | None, low: int, high: int) -> int | None:
    if value is None:
        return None
    if value.isdecimal() and len(value) <= len(str(high)) and low <= int(value) <= high:
        return int(value)
    raise Hj212Error("header", f"{name} is {_shown(value)}, not a whole number {low}..{high}")


def _cp_items(body: str, warnings: list[str]) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The data area's plain items and ``{code: {field: value}}``.

    Groups (``;``) and items (``,``) are both just separators here: what belongs together is
    said by the pollutant code in each key. Empty groups and items (a trailing ``;``) are
    skipped; a repeated key keeps its first value, with a warning.
    """
    plain: dict[str, str] = {}
    pollutants: dict[str, dict[str, str]] = {}
    for group in body.split(";"):
        for item in group.split(","):
            if not item:
                continue
            key, equals, value = item.partition("=")
            if not equals:
                raise Hj212Error("cp_grammar", f"the CP item {_shown(item)} has no '='")
            code, dash, name = key.partition("-")
            if dash:
                if not code or not name:
                    raise Hj212Error(
                        "cp_grammar", f"the CP key {_shown(key)} is not <code>-<Field>"
                    )
                fields = pollutants.get(code)
                if fields is None:
                    fields = pollutants[code] = {}
                target = fields
            elif key:
                target = plain
                name = key
            else:
                raise Hj212Error("cp_grammar", f"the CP item {_shown(item)} has no key")
            if name in target:
                warnings.append(f"CP repeats {key}; its first value was kept")
            else:
                target[name] = value
    return plain, pollutants


def _packet(
    header: dict[str, str],
    cp: dict[str, str],
    pollutants: dict[str, dict[str, str]],
    warnings: list[str],
    raw: bytes,
    data: str,
) -> DecodedPacket:
    st = _required(header, "ST", _ST, "2 digits (the system code)")
    cn = _required(header, "CN", _CN, "4 digits (the command code)")
    mn = _required(header, "MN", _MN, "1 to 24 letters and digits (the device id)")
    qn = _optional(header, "QN", warnings)
    if qn is not None and not _QN.fullmatch(qn):
        raise Hj212Error("header", f"QN is {_shown(qn)}, not 17 digits (yyyyMMddHHmmssZZZ)")
    flag = _whole_number("Flag", _optional(header, "Flag", warnings), 0, 255)
    pnum = _whole_number("PNUM", _optional(header, "PNUM", warnings), 1, 9999)
    pno = _whole_number("PNO", _optional(header, "PNO", warnings), 1, 9999)
    _check_split(flag, pnum, pno, warnings)
    if flag is not None and flag >> 2 not in (1, 2):
        warnings.append(
            f"Flag={flag} carries protocol version {flag >> 2}, neither 2017's (1) nor 2025's (2)"
        )
    return DecodedPacket(
        qn=qn,
        st=st,
        cn=cn,
        pw=header.get("PW"),
        mn=mn,
        flag=flag,
        pnum=pnum,
        pno=pno,
        data_time=_data_time(cp, pollutants, warnings),
        cp=cp,
        pollutants=pollutants,
        warnings=tuple(warnings),
        raw=raw,
        data_segment=data,
    )


def _check_split(flag: int | None, pnum: int | None, pno: int | None, warnings: list[str]) -> None:
    if (pnum is None) != (pno is None):
        present, absent = ("PNUM", "PNO") if pno is None else ("PNO", "PNUM")
        raise Hj212Error("header", f"{present} without {absent}: they go together")
    if pnum is not None and pno is not None and pno > pnum:
        raise Hj212Error("header", f"PNO={pno} is past PNUM={pnum}")
    if flag is None:
        return
    if flag & FLAG_SPLIT_PACKET and pnum is None:
        raise Hj212Error("header", f"Flag={flag} marks a split packet, but PNUM and PNO are absent")
    if not flag & FLAG_SPLIT_PACKET and pnum is not None:
        warnings.append(f"PNUM/PNO are present, but Flag={flag} does not mark a split packet")


def _data_time(
    cp: dict[str, str], pollutants: dict[str, dict[str, str]], warnings: list[str]
) -> datetime | None:
    """``DataTime`` as an aware datetime, after checking every ``SampleTime`` is a time."""
    for code, fields in pollutants.items():
        sample_time = fields.get("SampleTime")
        if sample_time:
            _time(f"{code}-SampleTime", sample_time)
    text = cp.get("DataTime")
    if text is None:
        return None
    if not text:
        warnings.append("DataTime is empty")
        return None
    return _time("DataTime", text)


def _time(name: str, text: str) -> datetime:
    try:
        return parse_cst_time(text)
    except ValueError as exc:
        raise Hj212Error(
            "data_time", f"{name} {_shown(text)} is not a yyyyMMddHHmmss time ({exc})"
        ) from None
