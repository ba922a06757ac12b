"""What the HJ 212 gateway does with one frame (pure: no sockets, no Kafka).

    decode (the device's own CRC variant) -> known device? right password?
      -> data (2051 minute, 2061 hourly, 2031 daily): a VocSample to publish, and a 9014 reply
         when the packet asks for one
      -> real-time data (2011): acknowledged, but dead-lettered as "not_stored" (the stream
         uses minute, hourly and daily data), so nothing vanishes unseen
      -> heartbeats (9021) and other notices: a 9013 reply when asked for, nothing to publish
      -> anything wrong: a rejection with its kind and exact reason, for the dead-letter topic

Passwords never leave this module: the raw bytes kept for Kafka have ``PW=`` masked with
asterisks of the same length (the frame's length field stays right; its CRC no longer does).
"""

import re
from dataclasses import dataclass, field
from typing import Final

from pydantic import ValidationError

from contracts.voc import VocSample, decode_voc_sample, encode_voc_sample
from ingest.hj212 import (
    CN_DATA_REPLY,
    CN_NOTICE_REPLY,
    FLAG_ACK_WANTED,
    CrcVariant,
    DecodedPacket,
    Hj212Error,
    build_reply,
    decode_frame,
    parse_number,
)
from ingest.voc_json import Values, check_sample, voc_sample_json
from plans.register import Register

CHANNEL: Final = "hj212"
DATA_INTERVALS: Final = {"2051": 60, "2061": 3600, "2031": 86_400}
REALTIME_DATA: Final = "2011"
#: Reasons a frame is refused beyond the decoder's own kinds; metric label values.
GATEWAY_KINDS: Final = ("unknown_device", "wrong_password", "bad_sample", "not_stored")
_PW = re.compile(rb"PW=([^;&]*)")
_MN = re.compile(rb"MN=([A-Za-z0-9]{1,24})")
_VARIANTS: Final = {
    "standard": CrcVariant.STANDARD,
    "modbus": CrcVariant.MODBUS,
    "swapped": CrcVariant.SWAPPED,
}


@dataclass(frozen=True)
class FrameOutcome:
    """What to do for one frame: each part optional."""

    reply: bytes | None = None
    sample_json: bytes | None = None  # a VocSample, as its contract JSON
    rejection: tuple[str, str] | None = None  # (kind, reason)
    auth_failure: bool = False
    device: str | None = None
    masked_raw: bytes = field(default=b"", repr=False)

    @property
    def sample(self) -> VocSample | None:
        return None if self.sample_json is None else decode_voc_sample(self.sample_json)


def mask_password(raw: bytes) -> bytes:
    """The frame with its password replaced by asterisks of the same length."""
    return _PW.sub(lambda m: b"PW=" + b"*" * len(m.group(1)), raw)


def _decode(raw: bytes, register: Register) -> DecodedPacket:
    try:
        return decode_frame(raw)
    except Hj212Error as error:
        if error.kind != "crc_mismatch":
            raise
        found = _MN.search(raw)
        device = register.monitors_by_mn.get(found.group(1).decode()) if found else None
        if device is None or device.crc_variant == "standard":
            raise
        return decode_frame(raw, crc_variant=_VARIANTS[device.crc_variant])


def _reply(packet: DecodedPacket, cn: str) -> bytes | None:
    if packet.flag is None or not packet.flag & FLAG_ACK_WANTED:
        return None
    return build_reply(packet, cn)


def _sample_json(packet: DecodedPacket, enterprise_code: str, interval: int) -> bytes:
    """The sample's contract JSON; ``ValueError`` with the reason when the contract refuses it."""
    if packet.data_time is None:
        raise ValueError(f"CN={packet.cn} data has no DataTime")
    values: dict[str, Values] = {}
    for code, fields in packet.pollutants.items():
        values[code] = (
            parse_number(fields.get("Avg", "")),
            parse_number(fields.get("Min", "")),
            parse_number(fields.get("Max", "")),
            parse_number(fields.get("Cou", "")),
            fields.get("Flag") or "N",
        )
    check_sample(packet.data_time, interval, values)
    fast = voc_sample_json(packet.mn, enterprise_code, packet.data_time, interval, values, "hj212")
    if fast is not None:
        return fast
    sample = VocSample.model_validate(  # a number only the model can format
        {
            "monitor_id": packet.mn,
            "enterprise_code": enterprise_code,
            "data_time": packet.data_time,
            "interval_seconds": interval,
            "values": {
                code: dict(zip(("avg", "min", "max", "cou", "flag"), v, strict=True))
                for code, v in values.items()
            },
            "source": "hj212",
        }
    )
    return encode_voc_sample(sample)


def handle_frame(raw: bytes, register: Register) -> FrameOutcome:
    """Everything the gateway must do about one frame, decided without IO."""
    masked = mask_password(raw)
    try:
        packet = _decode(raw, register)
    except Hj212Error as error:
        return FrameOutcome(rejection=(error.kind, error.reason), masked_raw=masked)
    device = register.monitors_by_mn.get(packet.mn)
    if device is None:
        return FrameOutcome(
            rejection=("unknown_device", f"MN {packet.mn} is not a registered monitor"),
            auth_failure=True,
            device=packet.mn,
            masked_raw=masked,
        )
    if packet.pw is None or not device.password_matches(packet.pw):
        return FrameOutcome(
            rejection=("wrong_password", f"wrong or missing password for MN {packet.mn}"),
            auth_failure=True,
            device=packet.mn,
            masked_raw=masked,
        )
    interval = DATA_INTERVALS.get(packet.cn)
    if interval is not None:
        reply = _reply(packet, CN_DATA_REPLY)
        try:
            sample_json = _sample_json(packet, device.enterprise_code, interval)
        except (ValueError, ValidationError) as error:
            reason = (
                str(error.errors()[0]["msg"]) if isinstance(error, ValidationError) else str(error)
            )
            return FrameOutcome(
                reply=reply, rejection=("bad_sample", reason), device=packet.mn, masked_raw=masked
            )
        return FrameOutcome(
            reply=reply, sample_json=sample_json, device=packet.mn, masked_raw=masked
        )
    if packet.cn == REALTIME_DATA:
        return FrameOutcome(
            reply=_reply(packet, CN_DATA_REPLY),
            rejection=(
                "not_stored",
                "real-time data (CN=2011) is not stored: minute, hourly and daily data are",
            ),
            device=packet.mn,
            masked_raw=masked,
        )
    return FrameOutcome(reply=_reply(packet, CN_NOTICE_REPLY), device=packet.mn, masked_raw=masked)
