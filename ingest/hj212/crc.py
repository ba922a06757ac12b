"""The HJ 212 check code, and the CRC-16/MODBUS that some vendors send instead.

HJ 212's CRC (DOMAIN.md §6) is *not* CRC-16/MODBUS, although both start from 0xFFFF and use
the reflected polynomial 0xA001: HJ 212 first shifts the register's low byte out and XORs each
byte into what was its high byte (``reg = (reg >> 8) ^ byte``), where MODBUS XORs the byte into
the low byte (``reg ^= byte``). Check values for ``b"123456789"``: HJ 212 0x2F80, MODBUS 0x4B37.

So HJ 212's register carries only 8 bits from one byte to the next: any single changed byte
changes the CRC, but random two-byte damage goes unnoticed about once in 256. A matching CRC is
weaker evidence than a real CRC-16's.

Both are driven by one table, built from the bitwise definition below, which the tests also
check against directly.
"""

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


def crc16_hj212(data: bytes) -> int:
    """HJ 212's CRC of ``data`` (the data segment, from ``QN=`` to the final ``&&``)."""
    reg = 0xFFFF
    for byte in data:
        reg = _TABLE[(reg >> 8) ^ byte]
    return reg


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS of ``data``, which some HJ 212 data loggers send in place of HJ 212's."""
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
