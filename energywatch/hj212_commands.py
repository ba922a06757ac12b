"""``energywatch hj212 decode``: HJ 212 frames in, one JSON object per line out.

Each input line is one frame, passed to ``decode_frame`` with its line end, so a capture with
``\\r\\n`` endings decodes cleanly and a file with bare ``\\n`` endings says so in each packet's
warnings. Each output line answers the input line of the same number:

- decoded: ``{"ok": true, "qn", "st", "cn", "mn", "flag", "pnum", "pno", "data_time", "cp",
  "pollutants", "warnings"}``. Header fields the packet leaves out are ``null``; QN, ST, CN and
  MN are strings, Flag, PNUM and PNO numbers; ``data_time`` is ISO 8601 with its +08:00 offset.
- rejected: ``{"ok": false, "kind": "<Hj212Error kind>", "error": "<reason>"}``.

Values in ``cp`` and ``pollutants``: empty → ``null``; fields whose names end in ``Time``,
``Flag``, ``Id`` or ``Rtn`` (``DataTime``, ``SampleTime``, ``Flag``, ``EFlag``, ``PolId``,
``QnRtn``) stay strings, being times, codes and flags rather than quantities; other values that
are numbers become JSON numbers, integers as integers (``"30"`` → ``30``, so counts stay
exact) and the rest as floats (``"1.20"`` → ``1.2``); anything else stays a string. The password
is never written: not PW, and not a CP field ending in ``PW`` such as ``NewPW``.

The exit code is 0 when the input could be read, however many frames were rejected: the
rejections are output, one per line, like the packets.
"""

import json
import math
from collections.abc import Iterable, Iterator
from typing import Annotated, Final

import click
import typer

from ingest.hj212 import CrcVariant, DecodedPacket, Hj212Error, decode_frame
from ingest.hj212.decoded import NUMBER

app = typer.Typer(help="HJ 212 frames: decode what data loggers send.", no_args_is_help=True)

_TEXT_SUFFIXES: Final = ("Time", "Flag", "Id", "Rtn")
_HIDDEN: Final = "(not shown)"
# int() refuses texts over 4300 digits, and a float holds 17 significant digits anyway
_LONGEST_INT: Final = 18


@app.callback()
def hj212() -> None:
    """HJ 212 frames: decode what data loggers send."""


@app.command()
def decode(
    file: Annotated[
        str,
        typer.Argument(metavar="FILE", help="Frames, one per line; - for standard input."),
    ] = "-",
    crc_variant: Annotated[
        CrcVariant,
        typer.Option(
            "--crc-variant",
            case_sensitive=False,
            help="The check code the device sends (standard is HJ 212's).",
        ),
    ] = CrcVariant.STANDARD,
    lenient_length: Annotated[
        bool,
        typer.Option(help="Accept a length field that disagrees with the data, with a warning."),
    ] = False,
) -> None:
    """Decode frames into JSON, one object per input line, in order; never shows passwords."""
    if file == "-":
        _write(decoded_lines(click.get_binary_stream("stdin"), crc_variant, lenient_length))
        return
    try:
        source = open(file, "rb")  # noqa: SIM115 - closed by the with below, after the check
    except OSError as exc:
        raise typer.BadParameter(f"{file}: {exc.strerror}", param_hint="FILE") from exc
    with source:
        _write(decoded_lines(source, crc_variant, lenient_length))


def _write(lines: Iterable[str]) -> None:
    out = click.get_text_stream("stdout")
    for line in lines:
        out.write(line + "\n")
        out.flush()  # a stream decoder: each answer as soon as its frame is in


def decoded_lines(
    frames: Iterable[bytes], crc_variant: CrcVariant, lenient_length: bool = False
) -> Iterator[str]:
    """One JSON text per frame (a binary file gives its lines), in order."""
    for frame in frames:
        try:
            packet = decode_frame(frame, crc_variant=crc_variant, lenient_length=lenient_length)
        except Hj212Error as exc:
            yield json.dumps({"ok": False, "kind": exc.kind, "error": exc.reason})
        else:
            yield json.dumps(packet_json(packet), allow_nan=False)


def packet_json(packet: DecodedPacket) -> dict[str, object]:
    """The decoded packet as the command writes it (module docstring); no password."""
    return {
        "ok": True,
        "qn": packet.qn,
        "st": packet.st,
        "cn": packet.cn,
        "mn": packet.mn,
        "flag": packet.flag,
        "pnum": packet.pnum,
        "pno": packet.pno,
        "data_time": None if packet.data_time is None else packet.data_time.isoformat(),
        "cp": {key: json_value(key, text) for key, text in packet.cp.items()},
        "pollutants": {
            code: {name: json_value(name, text) for name, text in fields.items()}
            for code, fields in packet.pollutants.items()
        },
        "warnings": list(packet.warnings),
    }


def json_value(name: str, text: str) -> str | int | float | None:
    """How the value ``text`` of the field ``name`` is written (module docstring)."""
    if not text:
        return None
    if name.upper().endswith("PW"):
        return _HIDDEN
    if name.endswith(_TEXT_SUFFIXES) or not NUMBER.fullmatch(text):
        return text
    digits = text.lstrip("+-")
    if digits.isdecimal() and len(digits) <= _LONGEST_INT:
        return int(text)
    number = float(text)
    return number if math.isfinite(number) else text
