"""The HJ 212 check code, the CRC-16/MODBUS that some vendors send instead, and the variants a
device can be configured with.

HJ 212's CRC (DOMAIN.md §6) is *not* CRC-16/MODBUS, although both start from 0xFFFF and use
the reflected polynomial 0xA001: HJ 212 first shifts the register's low byte out and XORs each
byte into what was its high byte (``reg = (reg >> 8) ^ byte``), where MODBUS XORs the byte into
the low byte (``reg ^= byte``). Check values for ``b"123456789"``: HJ 212 0x2F80, MODBUS 0x4B37.

So HJ 212's register carries only 8 bits from one byte to the next: any single changed byte
changes the CRC, but random two-byte damage goes unnoticed about once in 256. A matching CRC is
weaker evidence than a real CRC-16's.

Both are driven by one table, built from the bitwise definition below, which the tests also
check against directly. HJ 212's CRC has a faster form as well, explained at
``crc16_hj212``.
"""

from enum import StrEnum
from typing import Final

_POLYNOMIAL: Final = 0xA001


def _shift_eight_times(reg: int) -> int:
    for _ in range(8):
        lsb = reg & 1
        reg >>= 1
        if lsb:
            reg ^= _POLYNOMIAL
    return reg


# After ``reg = (reg >> 8) ^ byte`` the register holds only 8 bits, so HJ 212's eight shifts
# are a function of that byte alone; MODBUS's classic table serves both algorithms.
_TABLE: Final = tuple(_shift_eight_times(i) for i in range(256))


def _powers_of_the_carry() -> tuple[bytes, ...]:
    """``M^0, M^1, ...`` as translation tables, up to (excluding) the first power that is the
    identity again, where ``M(x) = _TABLE[x] >> 8`` is the byte HJ 212's register carries from
    one input byte to the next."""
    carry = [entry >> 8 for entry in _TABLE]
    identity = bytes(range(256))
    powers = [identity]
    while True:
        following = bytes(carry[x] for x in powers[-1])
        if following == identity:
            return tuple(powers)
        powers.append(following)


_POWERS: Final = _powers_of_the_carry()
# ``crc16_hj212`` folds the data into blocks of one byte per power; it is written for 8.
if len(_POWERS) != 8:  # pragma: no cover - a fact about the polynomial
    raise RuntimeError(f"the HJ 212 carry has period {len(_POWERS)}, not 8")
_M1, _M2, _M3, _M4, _M5, _M6, _M7 = _POWERS[1:]
# ``_FOLD_MASKS[k]``: the low ``64 << k`` bits, for folding 2^(k+1) blocks of 8 bytes into half;
# enough for 32 KiB of data, longer data computes its masks as it goes
_FOLD_MASKS: Final = tuple((1 << (64 << k)) - 1 for k in range(12))
# Below this the byte-at-a-time loop is faster than folding (both well under a microsecond).
_SHORT: Final = 32


def _crc16_hj212_bytewise(data: bytes) -> int:
    reg = 0xFFFF
    for byte in data:
        reg = _TABLE[(reg >> 8) ^ byte]
    return reg


def crc16_hj212(data: bytes) -> int:
    """HJ 212's CRC of ``data`` (the data segment, from ``QN=`` to the final ``&&``).

    Computed without a Python-level loop over the bytes (about 1.6 µs for 800 bytes, against
    16 µs byte by byte): the byte carried between steps is ``c' = M(c ^ byte)`` with ``M``
    linear over GF(2) and ``M^8`` the identity, so the carry before the last byte is
    ``M^m(0xFF) ^ XOR over j of M^((m - j) mod 8)(data[j])`` for the first ``m = len - 1``
    bytes. Bytes eight apart take the same power, so XOR-folding the data (as one big integer)
    down to 8 bytes leaves eight table look-ups, and the last byte goes through the table.
    """
    size = len(data)
    if size < _SHORT:
        return _crc16_hj212_bytewise(data)
    head = size - 1
    # big-endian: the zero bytes that pad ``head`` to whole 8-byte blocks, and the number of
    # blocks to a power of two, come first, where they contribute nothing
    folded = int.from_bytes(data[:head], "big")
    level = (((head + 7) >> 3) - 1).bit_length()
    while level:
        level -= 1
        mask = _FOLD_MASKS[level] if level < len(_FOLD_MASKS) else (1 << (64 << level)) - 1
        folded = (folded >> (64 << level)) ^ (folded & mask)
    # the byte at bit offset 8k of the fold takes the power (k + 1) mod 8
    carry = (
        _POWERS[head & 7][0xFF]
        ^ _M1[folded & 0xFF]
        ^ _M2[(folded >> 8) & 0xFF]
        ^ _M3[(folded >> 16) & 0xFF]
        ^ _M4[(folded >> 24) & 0xFF]
        ^ _M5[(folded >> 32) & 0xFF]
        ^ _M6[(folded >> 40) & 0xFF]
        ^ _M7[(folded >> 48) & 0xFF]
        ^ (folded >> 56)
    )
    return _TABLE[carry ^ data[head]]


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS of ``data``, which some HJ 212 data loggers send in place of HJ 212's.

    Byte at a time (about 31 µs for 800 bytes): its 16-bit register has no short cycle to fold
    over, and it only runs for devices configured with it or to explain a CRC mismatch.
    """
    reg = 0xFFFF
    for byte in data:
        reg = (reg >> 8) ^ _TABLE[(reg ^ byte) & 0xFF]
    return reg


def swap_crc_bytes(crc: int) -> int:
    """The 16-bit ``crc`` with its two bytes exchanged (0x4B37 → 0x374B).

    MODBUS puts a CRC on the wire low byte first; loggers that print it in that byte order
    send the swapped value.
    """
    if not 0 <= crc <= 0xFFFF:
        raise ValueError(f"a CRC-16 is 0..0xFFFF, not {crc:#x}")
    return ((crc & 0xFF) << 8) | (crc >> 8)


def crc_hex(crc: int) -> str:
    """A CRC as it goes on the wire: four upper-case hex digits."""
    if not 0 <= crc <= 0xFFFF:
        raise ValueError(f"a CRC-16 is 0..0xFFFF, not {crc:#x}")
    return f"{crc:04X}"


class CrcVariant(StrEnum):
    """Which check code a device sends. HJ 212 says ``STANDARD``; the others are vendor habits
    that a receiver accepts only from devices configured with them."""

    STANDARD = "standard"
    MODBUS = "modbus"
    SWAPPED = "swapped"

    @property
    def description(self) -> str:
        """What the variant is, for messages."""
        return _DESCRIPTIONS[self]

    def compute(self, data: bytes) -> int:
        """This variant's check code of ``data``."""
        if self is CrcVariant.MODBUS:
            return crc16_modbus(data)
        crc = crc16_hj212(data)
        return swap_crc_bytes(crc) if self is CrcVariant.SWAPPED else crc


_DESCRIPTIONS: Final = {
    CrcVariant.STANDARD: "the standard HJ 212 CRC",
    CrcVariant.MODBUS: "CRC-16/MODBUS",
    CrcVariant.SWAPPED: "the HJ 212 CRC with its bytes swapped",
}
