"""The HJ 212 encoder: check codes, frame structure, 2005-style packets, limits and times."""

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.hj212 import (
    FLAG_ACK_WANTED,
    FLAG_SPLIT_PACKET,
    FLAG_VERSION_2017,
    FLAG_VERSION_2025,
    MAX_DATA_SEGMENT_BYTES,
    CpSegment,
    Packet,
    crc16_hj212,
    crc16_modbus,
    crc_hex,
    data_time_cst,
    encode_packet,
    format_number,
    qn_for,
    swap_crc_bytes,
)

# HJ 212-2017, appendix C: the standard's own example frame.
STANDARD_EXAMPLE = (
    b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;"
    b"Flag=5;CP=&&RtdInterval=30&&1C80\r\n"
)


def frame_parts(frame: bytes) -> tuple[int, bytes, str]:
    """Take a frame apart as a receiver would: (length field, data segment, CRC field), after
    checking the header and trailer. Deliberately independent of the encoder."""
    assert frame[:2] == b"##", frame
    assert frame[-2:] == b"\r\n", frame
    assert re.fullmatch(rb"\d{4}", frame[2:6]), frame
    return int(frame[2:6]), frame[6:-6], frame[-6:-2].decode("ascii")


def bitwise_crc_hj212(data: bytes) -> int:
    """DOMAIN.md §6, literally."""
    reg = 0xFFFF
    for byte in data:
        reg = (reg >> 8) ^ byte
        for _ in range(8):
            lsb = reg & 1
            reg >>= 1
            if lsb:
                reg ^= 0xA001
    return reg


def bitwise_crc_modbus(data: bytes) -> int:
    reg = 0xFFFF
    for byte in data:
        reg ^= byte
        for _ in range(8):
            lsb = reg & 1
            reg >>= 1
            if lsb:
                reg ^= 0xA001
    return reg


def test_the_hj212_crc_has_its_check_values():
    assert crc16_hj212(b"123456789") == 0x2F80
    assert crc16_hj212(b"") == 0xFFFF


def test_the_modbus_crc_has_its_check_value_and_differs_from_hj212():
    assert crc16_modbus(b"123456789") == 0x4B37
    assert crc16_modbus(b"123456789") != crc16_hj212(b"123456789")


def test_swapping_crc_bytes_exchanges_them_and_twice_gives_the_original():
    assert swap_crc_bytes(0x4B37) == 0x374B
    assert swap_crc_bytes(swap_crc_bytes(0x1C80)) == 0x1C80
    with pytest.raises(ValueError, match=r"0\.\.0xFFFF"):
        swap_crc_bytes(0x10000)


def test_crcs_go_on_the_wire_as_four_upper_case_hex_digits():
    assert crc_hex(0x2F80) == "2F80"
    assert crc_hex(0x00AB) == "00AB"


@given(st.binary(max_size=2000))
def test_the_table_driven_crcs_match_their_bitwise_definitions(data):
    assert crc16_hj212(data) == bitwise_crc_hj212(data)
    assert crc16_modbus(data) == bitwise_crc_modbus(data)


@given(st.binary(min_size=1, max_size=1100), st.data())
def test_changing_any_single_byte_changes_the_crc(data, draw):
    index = draw.draw(st.integers(min_value=0, max_value=len(data) - 1))
    replacement = draw.draw(st.integers(0, 255).filter(lambda b: b != data[index]))
    damaged = data[:index] + bytes([replacement]) + data[index + 1 :]
    assert crc16_hj212(damaged) != crc16_hj212(data)


def test_the_standards_example_packet_encodes_to_the_standards_frame():
    packet = Packet(
        qn="20160801085857223",
        st="32",
        cn="1062",
        pw="100000",
        mn="010000A8900016F000169DC0",
        flag=FLAG_VERSION_2017 | FLAG_ACK_WANTED,
        cp=CpSegment.of({"RtdInterval": "30"}),
    )
    assert encode_packet(packet) == STANDARD_EXAMPLE


# --- any packet ------------------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,9}", fullmatch=True)
codes = st.from_regex(r"[a-z][0-9]{5}", fullmatch=True)
values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=";,=&"),
    max_size=12,
)


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    """Packets of every header shape whose data segment stays within 1024 bytes."""
    flag = draw(st.none() | st.integers(min_value=0, max_value=15))
    split = flag is not None and bool(flag & FLAG_SPLIT_PACKET)
    pnum: int | None
    pno: int | None
    if split or (flag is None and draw(st.booleans())):
        pnum = draw(st.integers(min_value=1, max_value=9999))
        pno = draw(st.integers(min_value=1, max_value=pnum))
    else:
        pnum = pno = None
    return Packet(
        qn=draw(st.none() | st.from_regex(r"[0-9]{17}", fullmatch=True)),
        st=draw(st.from_regex(r"[0-9]{2}", fullmatch=True)),
        cn=draw(st.from_regex(r"[0-9]{4}", fullmatch=True)),
        pw=draw(st.none() | values),
        mn=draw(st.from_regex(r"[A-Za-z0-9]{1,24}", fullmatch=True)),
        flag=flag,
        pnum=pnum,
        pno=pno,
        cp=CpSegment.of(
            draw(st.dictionaries(names, values, max_size=3)),
            draw(
                st.dictionaries(
                    codes, st.dictionaries(names, values, min_size=1, max_size=4), max_size=6
                )
            ),
        ),
    )


@given(packets())
def test_every_packet_encodes_to_a_frame_whose_length_and_crc_describe_its_data(packet):
    length, data, crc = frame_parts(encode_packet(packet))
    assert length == len(data) <= MAX_DATA_SEGMENT_BYTES
    assert crc == f"{bitwise_crc_hj212(data):04X}"
    assert data.endswith(b"&&")
    assert data.startswith(b"QN=" if packet.qn is not None else b"ST=")


@given(packets())
def test_header_fields_come_in_the_standards_order(packet):
    _, data, _ = frame_parts(encode_packet(packet))
    header = data.split(b";CP=&&", 1)[0]
    keys = [field.split(b"=", 1)[0].decode() for field in header.split(b";")]
    order = ["QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO"]
    assert keys == [key for key in order if key in keys]
    assert ("Flag" in keys) == (packet.flag is not None)
    assert ("PNUM" in keys) == ("PNO" in keys) == (packet.pnum is not None)


def test_the_data_area_lists_plain_keys_then_each_pollutant_with_its_fields():
    cp = CpSegment.of(
        {"DataTime": "20260101080000"},
        {
            "a24088": {"Avg": "1.2", "Flag": "N"},
            "a05002": {"Avg": "", "Flag": "M"},
        },
    )
    packet = Packet(
        qn=None, st="27", cn="2051", pw="123456", mn="VOC1", flag=FLAG_VERSION_2017, cp=cp
    )
    _, data, _ = frame_parts(encode_packet(packet))
    assert data == (
        b"ST=27;CN=2051;PW=123456;MN=VOC1;Flag=4;CP=&&DataTime=20260101080000;"
        b"a24088-Avg=1.2,a24088-Flag=N;a05002-Avg=,a05002-Flag=M&&"
    )
    assert cp.pollutant("a05002") == {"Avg": "", "Flag": "M"}


def test_a_2005_style_packet_has_no_qn_and_no_flag():
    packet = Packet(
        qn=None,
        st="32",
        cn="2011",
        pw="123456",
        mn="0873HHMZWSLH02",
        flag=None,
        cp=CpSegment.of({"DataTime": "20160103133030"}, {"w01018": {"Rtd": "3.0943"}}),
    )
    frame = encode_packet(packet)
    _, data, _ = frame_parts(frame)
    assert data.startswith(b"ST=32;CN=2011;PW=123456;MN=0873HHMZWSLH02;CP=&&")
    assert b"QN=" not in frame
    assert b"Flag=" not in frame


def test_a_split_packet_carries_pnum_and_pno_after_flag():
    packet = Packet(
        qn="20260101080000000",
        st="27",
        cn="2051",
        pw="123456",
        mn="VOC1",
        flag=FLAG_VERSION_2025 | FLAG_SPLIT_PACKET,
        pnum=3,
        pno=2,
        cp=CpSegment(),
    )
    _, data, _ = frame_parts(encode_packet(packet))
    assert b";Flag=10;PNUM=3;PNO=2;CP=&&&&" in data


def test_a_split_flag_without_pnum_and_pno_is_refused():
    with pytest.raises(ValueError, match="split bit but PNUM/PNO are absent"):
        Packet(qn=None, st="27", cn="2051", pw=None, mn="V", flag=6, cp=CpSegment())


def one_value_packet(data_segment_bytes: int) -> Packet:
    """A packet whose data segment ``ST=27;CN=2051;MN=V;CP=&&k=xxx…&&`` has the given size."""
    head = b"ST=27;CN=2051;MN=V;CP=&&k=&&"
    cp = CpSegment.of({"k": "x" * (data_segment_bytes - len(head))})
    return Packet(qn=None, st="27", cn="2051", pw=None, mn="V", flag=None, cp=cp)


def test_a_data_segment_of_1024_bytes_is_allowed():
    assert encode_packet(one_value_packet(1024)).startswith(b"##1024ST=27;")


def test_a_data_segment_over_1024_bytes_is_refused_saying_by_how_much():
    with pytest.raises(ValueError, match=r"is 1025 bytes, 1 over HJ 212's limit of 1024"):
        encode_packet(one_value_packet(1025))
    with pytest.raises(ValueError, match=r"is 1500 bytes, 476 over .* split it into PNUM/PNO"):
        encode_packet(one_value_packet(1500))


@pytest.mark.parametrize("value", ["a;b", "a,b", "a=b", "a&b", "中", "a\r\n"])
def test_values_that_would_break_the_frame_are_refused(value):
    with pytest.raises(ValueError, match="value of a24088-Avg"):
        CpSegment.of(pollutants={"a24088": {"Avg": value}})


def test_a_device_id_longer_than_24_characters_is_refused():
    with pytest.raises(ValueError, match="MN"):
        Packet(qn=None, st="27", cn="2051", pw=None, mn="M" * 25, flag=4, cp=CpSegment())


# --- numbers and times -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "wire"),
    [(1.2, "1.2"), (100.0, "100"), (0.00004, "0"), (0.00005, "0.0001"), (-3.5, "-3.5"),
     (-0.00001, "0"), (1e20, "100000000000000000000"), (7, "7"), (12.34567, "12.3457")],
)  # fmt: skip
def test_numbers_go_out_fixed_point_with_at_most_four_decimals(number, wire):
    assert format_number(number) == wire


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_formatted_numbers_never_use_an_exponent_and_keep_their_value(number):
    wire = format_number(number)
    assert re.fullmatch(r"-?\d+(\.\d{0,3}[1-9])?", wire)
    assert abs(float(wire) - number) <= 0.00005 + abs(number) * 1e-15


def test_infinite_numbers_are_refused():
    with pytest.raises(ValueError, match="finite"):
        format_number(float("inf"))


def test_data_time_is_china_standard_time():
    assert data_time_cst(datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == "20260101080000"
    # 16:00 UTC is the next day's midnight in China
    assert data_time_cst(datetime(2026, 12, 31, 16, 0, 5, tzinfo=UTC)) == "20270101000005"
    new_york = timezone(timedelta(hours=-5))
    assert data_time_cst(datetime(2026, 7, 1, 7, 0, tzinfo=new_york)) == "20260701200000"


def test_qn_is_china_standard_time_with_milliseconds():
    assert qn_for(datetime(2016, 8, 1, 0, 58, 57, 223_999, tzinfo=UTC)) == "20160801085857223"


def test_naive_times_are_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="timezone-aware"):
        data_time_cst(datetime(2026, 1, 1))
