"""Encoding HJ 212 packets into frames, and the China Standard Time stamps they carry.

A frame is ``##`` + the data segment's length in bytes as 4 decimal digits + the data segment
(``QN=...;ST=..;CN=..;PW=..;MN=..;Flag=..;[PNUM=..;PNO=..;]CP=&&...&&``) + its CRC as 4
upper-case hex digits (``crc16_hj212``) + ``\\r\\n``. The data segment is at most 1024 bytes.
"""

from datetime import datetime
from typing import Final

from contracts.identifiers import CHINA_STANDARD_TIME
from ingest.hj212.crc import crc16_hj212, crc_hex
from ingest.hj212.packet import Packet

#: China Standard Time: UTC+8 all year. A fixed offset, not Asia/Shanghai, whose history
#: includes the summer time of 1986–1991.
MAX_DATA_SEGMENT_BYTES: Final = 1024


def _in_cst(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"HJ 212 times need a timezone-aware datetime, not naive {dt}")
    return dt.astimezone(CHINA_STANDARD_TIME)


def data_time_cst(dt: datetime) -> str:
    """``DataTime``: the instant ``dt`` (aware) as China Standard Time ``yyyyMMddHHmmss``."""
    return _in_cst(dt).strftime("%Y%m%d%H%M%S")


def qn_for(dt: datetime) -> str:
    """``QN``: the instant ``dt`` (aware) as China Standard Time ``yyyyMMddHHmmssZZZ``."""
    local = _in_cst(dt)
    return f"{local:%Y%m%d%H%M%S}{local.microsecond // 1000:03d}"


def data_segment(packet: Packet) -> bytes:
    """The packet's data segment, from ``QN=`` (or ``ST=`` when there is no QN) to ``&&``."""
    fields = [] if packet.qn is None else [f"QN={packet.qn}"]
    fields += [f"ST={packet.st}", f"CN={packet.cn}"]
    if packet.pw is not None:
        fields.append(f"PW={packet.pw}")
    fields.append(f"MN={packet.mn}")
    if packet.flag is not None:
        fields.append(f"Flag={packet.flag}")
    if packet.pnum is not None:
        fields += [f"PNUM={packet.pnum}", f"PNO={packet.pno}"]
    fields.append(f"CP=&&{packet.cp.wire()}&&")
    # Packet and CpSegment admit printable ASCII only, so this cannot fail.
    return ";".join(fields).encode("ascii")


def encode_packet(packet: Packet) -> bytes:
    """The packet's complete frame, ``##`` to ``\\r\\n``.

    Raises ``ValueError`` when the data segment is longer than HJ 212's 1024 bytes, saying by
    how much: such a message has to be split into PNUM/PNO packets.
    """
    data = data_segment(packet)
    if len(data) > MAX_DATA_SEGMENT_BYTES:
        raise ValueError(
            f"the data segment is {len(data)} bytes, {len(data) - MAX_DATA_SEGMENT_BYTES} over"
            f" HJ 212's limit of {MAX_DATA_SEGMENT_BYTES}: split it into PNUM/PNO packets"
        )
    return b"##%04d%b%b\r\n" % (len(data), data, crc_hex(crc16_hj212(data)).encode("ascii"))
