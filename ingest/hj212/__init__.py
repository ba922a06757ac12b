"""HJ 212: the protocol of China's pollution-source online monitors (pure, no IO).

HJ 212-2017 ("污染物在线监控（监测）系统数据传输标准") is the edition data loggers speak; the
2025 edition, in force since 2026-01-01, keeps the frame, moves the version in ``Flag`` and adds
commands. ``Flag`` is a byte: bit 0 asks for a data reply (``FLAG_ACK_WANTED``), bit 1 marks a
split packet that carries PNUM/PNO (``FLAG_SPLIT_PACKET``), and bits 2+ hold the version, so a
2017 packet has Flag 4–7 (``FLAG_VERSION_2017``) and a 2025 packet Flag 8–11
(``FLAG_VERSION_2025``). 2005-style packets carry no QN and no Flag.

This package encodes (``encode_packet``) and decodes (``decode_frame``, which accepts what real
loggers send and says exactly what it rejects), and builds the platform's replies
(``build_reply``). It does no IO.
"""

from contracts.identifiers import CHINA_STANDARD_TIME
from ingest.hj212.crc import CrcVariant, crc16_hj212, crc16_modbus, crc_hex, swap_crc_bytes
from ingest.hj212.decode import MAX_FRAME_BYTES, decode_frame
from ingest.hj212.decoded import DecodedPacket, Version, parse_cst_time, parse_number
from ingest.hj212.encode import (
    MAX_DATA_SEGMENT_BYTES,
    data_segment,
    data_time_cst,
    encode_packet,
    qn_for,
)
from ingest.hj212.errors import ERROR_KINDS, ErrorKind, Hj212Error
from ingest.hj212.packet import (
    CN_DAILY_DATA,
    CN_DATA_REPLY,
    CN_HEARTBEAT,
    CN_HOURLY_DATA,
    CN_MINUTE_DATA,
    CN_NOTICE_REPLY,
    CN_REALTIME_DATA,
    FLAG_ACK_WANTED,
    FLAG_SPLIT_PACKET,
    FLAG_VERSION_2017,
    FLAG_VERSION_2025,
    ST_AIR_SOURCE,
    ST_SYSTEM_REPLY,
    ST_VOCS,
    ST_WATER_SOURCE,
    CpSegment,
    Packet,
    format_number,
)
from ingest.hj212.reply import build_reply

__all__ = [
    "CHINA_STANDARD_TIME",
    "CN_DAILY_DATA",
    "CN_DATA_REPLY",
    "CN_HEARTBEAT",
    "CN_HOURLY_DATA",
    "CN_MINUTE_DATA",
    "CN_NOTICE_REPLY",
    "CN_REALTIME_DATA",
    "ERROR_KINDS",
    "FLAG_ACK_WANTED",
    "FLAG_SPLIT_PACKET",
    "FLAG_VERSION_2017",
    "FLAG_VERSION_2025",
    "MAX_DATA_SEGMENT_BYTES",
    "MAX_FRAME_BYTES",
    "ST_AIR_SOURCE",
    "ST_SYSTEM_REPLY",
    "ST_VOCS",
    "ST_WATER_SOURCE",
    "CpSegment",
    "CrcVariant",
    "DecodedPacket",
    "ErrorKind",
    "Hj212Error",
    "Packet",
    "Version",
    "build_reply",
    "crc16_hj212",
    "crc16_modbus",
    "crc_hex",
    "data_segment",
    "data_time_cst",
    "decode_frame",
    "encode_packet",
    "format_number",
    "parse_cst_time",
    "parse_number",
    "qn_for",
    "swap_crc_bytes",
]
