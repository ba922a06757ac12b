"""The platform's replies to a decoded packet: 9014 (data reply) and 9013 (notice reply)."""

from typing import Final

from ingest.hj212.decoded import DecodedPacket
from ingest.hj212.encode import encode_packet
from ingest.hj212.packet import (
    CN_DATA_REPLY,
    CN_NOTICE_REPLY,
    FLAG_ACK_WANTED,
    FLAG_SPLIT_PACKET,
    FLAG_VERSION_2017,
    ST_SYSTEM_REPLY,
    CpSegment,
    Packet,
)

_REPLIES: Final = frozenset({CN_DATA_REPLY, CN_NOTICE_REPLY})


def build_reply(packet: DecodedPacket, cn: str) -> bytes:
    """The frame that answers ``packet`` with ``cn``: ``"9014"`` (data reply, owed when the
    packet's Flag asks for one, ``packet.ack_wanted``) or ``"9013"`` (notice reply).

    ST=91 and the packet's own QN, PW and MN, so the logger can match the reply to its request;
    ``Flag`` carries the packet's protocol version without the ack and split bits (a reply wants
    no reply), or 4 (2017) when the packet has no Flag or no version in it; ``CP=&&&&``, as
    HJ 212-2017 gives both replies no data.

    Raises ``ValueError`` for another ``cn``, and when the packet's PW holds a character a
    reply cannot carry (``,`` ``=`` ``&``; the message does not quote it).
    """
    if cn not in _REPLIES:
        raise ValueError(f"build_reply sends 9014 or 9013, not CN={cn!r}")
    version_bits = (packet.flag or 0) & ~(FLAG_ACK_WANTED | FLAG_SPLIT_PACKET)
    reply = Packet(
        qn=packet.qn,
        st=ST_SYSTEM_REPLY,
        cn=cn,
        pw=packet.pw,
        mn=packet.mn,
        flag=version_bits or FLAG_VERSION_2017,
        cp=CpSegment(),
    )
    return encode_packet(reply)
