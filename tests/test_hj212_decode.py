"""The HJ 212 decoder: what real data loggers send is accepted, what is wrong is named exactly,
and whatever the encoder builds decodes back to itself."""

import pickle
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ingest.hj212 import (
    CHINA_STANDARD_TIME,
    ERROR_KINDS,
    FLAG_SPLIT_PACKET,
    MAX_FRAME_BYTES,
    CpSegment,
    CrcVariant,
    DecodedPacket,
    Hj212Error,
    Packet,
    build_reply,
    crc16_hj212,
    data_time_cst,
    decode_frame,
    encode_packet,
    parse_cst_time,
    parse_number,
)
from tests.test_hj212_encode import STANDARD_EXAMPLE, bitwise_crc_hj212, bitwise_crc_modbus


def frame(
    data: str | bytes, *, crc: str | None = None, length: str | None = None, end: bytes = b"\r\n"
) -> bytes:
    """A frame around ``data`` with its true length and CRC unless told otherwise; built from
    DOMAIN.md's definitions, not by the encoder."""
    body = data.encode("latin-1") if isinstance(data, str) else data
    length = f"{len(body):04d}" if length is None else length
    crc = f"{bitwise_crc_hj212(body):04X}" if crc is None else crc
    return b"##" + length.encode() + body + crc.encode() + end


def rejection(
    raw: bytes, crc_variant: CrcVariant = CrcVariant.STANDARD, lenient_length: bool = False
) -> Hj212Error:
    with pytest.raises(Hj212Error) as caught:
        decode_frame(raw, crc_variant=crc_variant, lenient_length=lenient_length)
    return caught.value


EXAMPLE_DATA = STANDARD_EXAMPLE[6:-6]

# A typical minute-data packet from a VOC monitor: 8 pollutants with Min/Avg/Max/Flag.
MINUTE_DATA = (
    "QN=20260101080000123;ST=27;CN=2051;PW=123456;MN=VOC00000000000000000001;Flag=5;"
    "CP=&&DataTime=20260101080000;"
    + ";".join(
        f"{code}-Min={low},{code}-Avg={mid},{code}-Max={high},{code}-Flag=N"
        for code, low, mid, high in [
            ("a24088", "1.10", "1.25", "1.40"),
            ("a24087", "2.1", "2.3", "2.6"),
            ("a05002", "0.9", "1.05", "1.2"),
            ("a25002", "0.01", "0.012", "0.02"),
            ("a25003", "0.03", "0.035", "0.04"),
            ("a00000", "1200", "1250.5", "1301"),
            ("a01012", "-3.5", "-2.25", "-1"),
            ("a19001", "20.1", "20.3", "20.6"),
        ]
    )
    + "&&"
)


# --- check codes -----------------------------------------------------------------------------


@given(st.binary(max_size=3000))
@example(b"")
@example(b"x" * 31)
@example(b"x" * 32)
@example(b"\xff" * 1025)
def test_the_fast_hj212_crc_equals_the_bitwise_definition(data):
    assert crc16_hj212(data) == bitwise_crc_hj212(data)


@pytest.mark.parametrize("size", [*range(70), 127, 128, 129, 1023, 1024, 1025, 4097, 40_000])
def test_the_fast_hj212_crc_is_right_at_every_fold_boundary(size):
    data = bytes((i * 37 + 11) % 256 for i in range(size))
    assert crc16_hj212(data) == bitwise_crc_hj212(data)


def test_the_crc_variants_have_their_check_values():
    assert CrcVariant.STANDARD.compute(b"123456789") == 0x2F80
    assert CrcVariant.MODBUS.compute(b"123456789") == 0x4B37
    assert CrcVariant.SWAPPED.compute(b"123456789") == 0x802F
    assert CrcVariant.STANDARD.compute(b"") == 0xFFFF
    assert CrcVariant.MODBUS.compute(EXAMPLE_DATA) == bitwise_crc_modbus(EXAMPLE_DATA)


# --- the standard's example and a typical packet ---------------------------------------------


def test_the_standards_example_frame_decodes_to_its_fields():
    packet = decode_frame(STANDARD_EXAMPLE)
    assert (packet.qn, packet.st, packet.cn, packet.pw, packet.mn, packet.flag) == (
        "20160801085857223",
        "32",
        "1062",
        "100000",
        "010000A8900016F000169DC0",
        5,
    )
    assert packet.version == "2017"
    assert packet.ack_wanted
    assert not packet.split_packet
    assert (packet.pnum, packet.pno, packet.data_time) == (None, None, None)
    assert packet.cp == {"RtdInterval": "30"}
    assert packet.cp_number("RtdInterval") == 30.0
    assert packet.pollutants == {}
    assert packet.warnings == ()
    assert packet.raw == STANDARD_EXAMPLE
    assert packet.data_segment == EXAMPLE_DATA.decode()


def test_a_minute_data_packet_decodes_its_pollutants_and_its_china_standard_data_time():
    packet = decode_frame(frame(MINUTE_DATA))
    assert packet.cn == "2051"
    assert packet.data_time == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert packet.data_time.utcoffset() == timedelta(hours=8)
    assert list(packet.pollutants) == [
        "a24088", "a24087", "a05002", "a25002", "a25003", "a00000", "a01012", "a19001",
    ]  # fmt: skip
    assert packet.pollutants["a24088"] == {"Min": "1.10", "Avg": "1.25", "Max": "1.40", "Flag": "N"}
    assert packet.number("a24088", "Avg") == 1.25
    assert packet.number("a01012", "Min") == -3.5
    assert packet.number("a99999", "Avg") is None
    with pytest.raises(ValueError, match="'N' is not a number"):
        packet.number("a24088", "Flag")
    assert packet.cp == {"DataTime": "20260101080000"}
    assert packet.warnings == ()


def test_the_password_is_kept_but_repr_never_shows_it():
    packet = decode_frame(frame(MINUTE_DATA.replace("PW=123456", "PW=Sesame42")))
    assert packet.pw == "Sesame42"
    assert "Sesame42" not in repr(packet)
    assert "VOC00000000000000000001" in repr(packet)


# --- field reality: accepted -----------------------------------------------------------------


def test_a_lowercase_crc_is_accepted():
    lowercase = STANDARD_EXAMPLE.replace(b"&&1C80", b"&&1c80")
    assert decode_frame(lowercase).warnings == ()
    data = b"ST=32;CN=2011;MN=X;CP=&&&&"
    assert decode_frame(frame(data, crc=f"{bitwise_crc_hj212(data):04x}")).mn == "X"


@pytest.mark.parametrize(
    ("end", "warning"),
    [
        (b"\n", "the frame ends in a bare \\n, not \\r\\n"),
        (b"\r", "the frame ends in a bare \\r, not \\r\\n"),
        (b"", "the frame has no \\r\\n at its end"),
    ],
)
def test_a_missing_or_bare_line_end_is_accepted_with_a_warning(end, warning):
    packet = decode_frame(STANDARD_EXAMPLE[:-2] + end)
    assert packet.warnings == (warning,)
    assert packet.mn == "010000A8900016F000169DC0"


def test_a_2005_style_packet_without_qn_and_flag_decodes():
    packet = decode_frame(
        frame("ST=32;CN=2011;PW=123456;MN=0873HHMZWSLH02;CP=&&DataTime=20160103133030;w01018-Rtd=3.0943&&")
    )  # fmt: skip
    assert (packet.qn, packet.flag, packet.version) == (None, None, None)
    assert not packet.ack_wanted
    assert packet.number("w01018", "Rtd") == 3.0943
    assert packet.data_time == datetime(2016, 1, 3, 13, 30, 30, tzinfo=CHINA_STANDARD_TIME)
    assert packet.warnings == ()


def test_trailing_semicolons_empty_values_and_negative_numbers_are_accepted_silently():
    packet = decode_frame(
        frame(
            "ST=27;CN=2011;PW=;MN=V1;Flag=4;CP=&&DataTime=20260101080000;"
            "a01012-Rtd=-3.5,a01012-Flag=N;a24088-Rtd=,a24088-Flag=D,;;"
            "a01013-Rtd=-0.25e1;&&"
        )
    )
    assert packet.pw == ""
    assert packet.pollutants == {
        "a01012": {"Rtd": "-3.5", "Flag": "N"},
        "a24088": {"Rtd": "", "Flag": "D"},
        "a01013": {"Rtd": "-0.25e1"},
    }
    assert packet.number("a01012", "Rtd") == -3.5
    assert packet.number("a24088", "Rtd") is None
    assert packet.number("a01013", "Rtd") == -2.5
    assert packet.warnings == ()


def test_a_vendor_heartbeat_decodes():
    heartbeat = "QN=20260101080000000;ST=27;CN=9021;PW=123456;MN=VOC1;Flag=4;CP=&&&&"
    packet = decode_frame(frame(heartbeat))
    assert packet.cn == "9021"
    assert (packet.cp, packet.pollutants, packet.data_time) == ({}, {}, None)


def test_header_fields_are_read_in_any_order_and_case_saying_so():
    packet = decode_frame(frame("MN=VOC1;flag=4;CN=2011;ST=27;Pw=x;CP=&&&&"))
    assert (packet.st, packet.cn, packet.mn, packet.flag) == ("27", "2011", "VOC1", 4)
    assert packet.pw == "x"
    assert packet.warnings == (
        "the header field 'flag' was read as Flag",
        "the header field 'Pw' was read as PW",
    )


def test_unknown_header_fields_and_empty_ones_are_skipped_with_a_warning():
    packet = decode_frame(frame("ST=27;CN=2011;;MN=V;Vendor=7;CP=&&&&"))
    assert packet.mn == "V"
    assert packet.warnings == (
        "an empty header field (';;') was skipped",
        "the header field 'Vendor' is not HJ 212's and was ignored",
    )


def test_empty_qn_and_flag_are_taken_as_absent_with_a_warning():
    packet = decode_frame(frame("QN=;ST=27;CN=2011;MN=V;Flag=;CP=&&&&"))
    assert (packet.qn, packet.flag) == (None, None)
    assert packet.warnings == (
        "QN is empty and was taken as absent",
        "Flag is empty and was taken as absent",
    )


def test_a_repeated_cp_key_keeps_its_first_value_with_a_warning():
    packet = decode_frame(frame("ST=27;CN=2011;MN=V;CP=&&a24088-Rtd=1,a24088-Rtd=2;k=1;k=2&&"))
    assert packet.pollutants == {"a24088": {"Rtd": "1"}}
    assert packet.cp == {"k": "1"}
    assert packet.warnings == (
        "CP repeats a24088-Rtd; its first value was kept",
        "CP repeats k; its first value was kept",
    )


def test_an_empty_data_time_is_taken_as_absent_with_a_warning():
    packet = decode_frame(frame("ST=27;CN=2011;MN=V;CP=&&DataTime=;a24088-SampleTime=&&"))
    assert packet.data_time is None
    assert packet.sample_time("a24088") is None
    assert packet.warnings == ("DataTime is empty",)


def test_sample_times_read_as_china_standard_time():
    packet = decode_frame(frame("ST=27;CN=2011;MN=V;CP=&&a24088-SampleTime=20260101075930&&"))
    assert packet.sample_time("a24088") == datetime(2025, 12, 31, 23, 59, 30, tzinfo=UTC)


def test_an_over_long_data_segment_with_a_correct_crc_is_accepted_with_a_warning():
    data = "ST=27;CN=2011;MN=V;CP=&&k=" + "x" * (1100 - 28) + "&&"
    packet = decode_frame(frame(data))
    assert len(packet.data_segment) == 1100
    assert packet.warnings == (
        "the data segment is 1100 bytes, 76 over HJ 212's limit of 1024"
        " (accepted: its CRC is correct)",
    )


def test_an_over_long_data_segment_with_a_wrong_crc_is_still_a_crc_mismatch():
    data = "ST=27;CN=2011;MN=V;CP=&&k=" + "x" * 1100 + "&&"
    assert rejection(frame(data, crc="0000")).kind == "crc_mismatch"


def test_a_wrong_length_field_is_accepted_only_when_lenient():
    wrong = STANDARD_EXAMPLE.replace(b"##0101", b"##0100")
    assert rejection(wrong).reason == "the length field says 0100, the data segment is 101 bytes"
    packet = decode_frame(wrong, lenient_length=True)
    assert packet.warnings == (
        "the length field says 0100, the data segment is 101 bytes (accepted: lenient_length)",
    )


# --- CRC variants ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "crc", "description"),
    [
        (CrcVariant.MODBUS, f"{bitwise_crc_modbus(EXAMPLE_DATA):04X}", "CRC-16/MODBUS"),
        (CrcVariant.SWAPPED, "801C", "the HJ 212 CRC with its bytes swapped"),
    ],
)
def test_a_vendor_crc_is_accepted_only_from_a_device_configured_with_it(variant, crc, description):
    vendor_frame = frame(EXAMPLE_DATA, crc=crc)
    assert decode_frame(vendor_frame, crc_variant=variant).qn == "20160801085857223"
    error = rejection(vendor_frame)
    assert error.kind == "crc_mismatch"
    assert error.reason == (
        f"CRC mismatch: packet says {crc}, computed 1C80 (it matches {description}:"
        " configure the device's crc_variant if that is expected)"
    )


def test_a_standard_crc_from_a_device_configured_for_modbus_is_named_in_the_reason():
    error = rejection(STANDARD_EXAMPLE, crc_variant=CrcVariant.MODBUS)
    modbus = f"{bitwise_crc_modbus(EXAMPLE_DATA):04X}"
    assert error.reason == (
        f"CRC mismatch: packet says 1C80, computed {modbus} as CRC-16/MODBUS (it matches the"
        " standard HJ 212 CRC: configure the device's crc_variant if that is expected)"
    )


# --- rejections: every kind, each with its exact reason ---------------------------------------

OK_HEAD = "ST=32;CN=1062;MN=X;"
REJECTIONS = [
    pytest.param(
        b"#" * (MAX_FRAME_BYTES + 1), "too_long",
        "the frame is 10012 bytes, longer than any HJ 212 frame can be"
        " (10011: a 4-digit length field counts at most 9999 bytes of data)",
        id="too_long",
    ),
    pytest.param(
        frame("ST=32;CN=1062;MN=X\xe4;CP=&&&&"), "encoding",
        "byte 0xE4 at offset 24 is not ASCII: HJ 212 frames are ASCII text", id="non_ascii",
    ),
    pytest.param(
        frame("ST=32;CN=1062;MN=X\x00;CP=&&&&"), "encoding",
        "control byte 0x00 at offset 24: HJ 212 frames are printable ASCII", id="control_byte",
    ),
    pytest.param(b"\r\n", "framing", "the frame is empty", id="empty"),
    pytest.param(
        b"#0101" + EXAMPLE_DATA + b"1C80\r\n", "framing", "the frame starts with '#0', not '##'",
        id="no_hashes",
    ),
    pytest.param(
        b"##00FF\r\n", "framing",
        "the frame is 6 bytes without its line end; the shortest is 10"
        " (## + 4-digit length + 4-hex CRC)",
        id="too_short",
    ),
    pytest.param(
        frame(EXAMPLE_DATA, length="01a1"), "framing",
        "the length field '01a1' is not 4 decimal digits", id="length_not_decimal",
    ),
    pytest.param(
        frame(EXAMPLE_DATA, crc="1C8G"), "framing",
        "the frame does not end in a 4-hex-digit CRC '1C8G' (before its line end)",
        id="crc_not_hex",
    ),
    pytest.param(
        STANDARD_EXAMPLE + STANDARD_EXAMPLE, "framing",
        "a line break ('\\r') at offset 111 inside the frame: one frame per line,"
        " ending in \\r\\n",
        id="two_frames_in_one",
    ),
    pytest.param(
        STANDARD_EXAMPLE[: STANDARD_EXAMPLE.index(b"PW=10") + 5] + b"\r\n", "framing",
        "the frame does not end in a 4-hex-digit CRC (before its line end)", id="cut_off",
    ),
    pytest.param(
        STANDARD_EXAMPLE.replace(b"##0101", b"##0102"), "length_mismatch",
        "the length field says 0102, the data segment is 101 bytes", id="length_mismatch",
    ),
    pytest.param(
        STANDARD_EXAMPLE.replace(b"&&1C80", b"&&1C81"), "crc_mismatch",
        "CRC mismatch: packet says 1C81, computed 1C80", id="crc_mismatch",
    ),
    pytest.param(
        frame("ST=32;CN=1062;MN=X;&&"), "header",
        "the data segment has no CP=&& (the start of its data area)", id="no_cp",
    ),
    pytest.param(
        frame("ST=32;CN=1062;MN=XCP=&&&&"), "header",
        "no ';' between the header and CP=&& (offset 24)", id="no_semicolon_before_cp",
    ),
    pytest.param(frame("CN=1062;MN=X;CP=&&&&"), "header", "the header has no ST", id="no_st"),
    pytest.param(
        frame("ST=32;CN=106;MN=X;CP=&&&&"), "header",
        "CN is '106', not 4 digits (the command code)", id="bad_cn",
    ),
    pytest.param(frame("ST=32;CN=1062;MN=;CP=&&&&"), "header", "MN is empty", id="empty_mn"),
    pytest.param(
        frame("ST=32;CN=1062;MN=VOC-1;CP=&&&&"), "header",
        "MN is 'VOC-1', not 1 to 24 letters and digits (the device id)", id="bad_mn",
    ),
    pytest.param(
        frame("QN=2016080108585722;" + OK_HEAD + "CP=&&&&"), "header",
        "QN is '2016080108585722', not 17 digits (yyyyMMddHHmmssZZZ)", id="bad_qn",
    ),
    pytest.param(
        frame(OK_HEAD + "MN=Y;CP=&&&&"), "header", "MN appears twice in the header",
        id="repeated_field",
    ),
    pytest.param(
        frame(OK_HEAD + "PW123456;CP=&&&&"), "header",
        "the header field (not shown: it may hold a password) has no '='",
        id="field_without_equals",
    ),
    pytest.param(
        frame(OK_HEAD + "Flag=256;CP=&&&&"), "header", "Flag is '256', not a whole number 0..255",
        id="flag_out_of_range",
    ),
    pytest.param(
        frame(OK_HEAD + "Flag=6;CP=&&&&"), "header",
        "Flag=6 marks a split packet, but PNUM and PNO are absent", id="split_without_pnum",
    ),
    pytest.param(
        frame(OK_HEAD + "PNUM=3;CP=&&&&"), "header", "PNUM without PNO: they go together",
        id="pnum_without_pno",
    ),
    pytest.param(
        frame(OK_HEAD + "Flag=6;PNUM=3;PNO=4;CP=&&&&"), "header", "PNO=4 is past PNUM=3",
        id="pno_past_pnum",
    ),
    pytest.param(
        frame(OK_HEAD + "Flag=6;PNUM=0;PNO=0;CP=&&&&"), "header",
        "PNUM is '0', not a whole number 1..9999", id="pnum_zero",
    ),
    pytest.param(
        frame(OK_HEAD + "CP=&&RtdInterval=30&"), "cp_grammar",
        "the data segment does not end in && (CP=&&...&& is not closed)", id="cp_not_closed",
    ),
    pytest.param(
        frame(OK_HEAD + "CP=&&&"), "cp_grammar",
        "the data segment does not end in && (CP=&&...&& is not closed)", id="cp_overlapping",
    ),
    pytest.param(
        frame(OK_HEAD + "CP=&&RtdInterval&&"), "cp_grammar",
        "the CP item 'RtdInterval' has no '='", id="item_without_equals",
    ),
    pytest.param(
        frame(OK_HEAD + "CP=&&-Rtd=1&&"), "cp_grammar", "the CP key '-Rtd' is not <code>-<Field>",
        id="no_code",
    ),
    pytest.param(
        frame(OK_HEAD + "CP=&&a24088-=1&&"), "cp_grammar",
        "the CP key 'a24088-' is not <code>-<Field>", id="no_field",
    ),
    pytest.param(
        frame(OK_HEAD + "CP=&&=5&&"), "cp_grammar", "the CP item '=5' has no key", id="no_key",
    ),
    pytest.param(
        frame(OK_HEAD + "CP=&&DataTime=20261301000000&&"), "data_time",
        "DataTime '20261301000000' is not a yyyyMMddHHmmss time (month must be in 1..12)",
        id="month_13",
    ),
    pytest.param(
        frame(OK_HEAD + "CP=&&DataTime=2026&&"), "data_time",
        "DataTime '2026' is not a yyyyMMddHHmmss time (not 14 digits)", id="short_data_time",
    ),
    pytest.param(
        frame(OK_HEAD + "CP=&&a24088-SampleTime=20260101250000&&"), "data_time",
        "a24088-SampleTime '20260101250000' is not a yyyyMMddHHmmss time (hour must be in 0..23)",
        id="bad_sample_time",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "kind", "reason"), REJECTIONS)
def test_a_bad_frame_is_rejected_with_its_kind_and_exact_reason(raw, kind, reason):
    error = rejection(raw)
    assert (error.kind, error.reason, str(error)) == (kind, reason, reason)


def test_every_error_kind_is_reachable():
    assert {case.values[1] for case in REJECTIONS} == set(ERROR_KINDS)


def test_an_error_survives_pickling_with_its_kind_and_reason():
    error = pickle.loads(pickle.dumps(Hj212Error("crc_mismatch", "CRC mismatch: ...")))
    assert (error.kind, error.reason) == ("crc_mismatch", "CRC mismatch: ...")


# --- flags, versions and split packets --------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "version", "ack"),
    [(4, "2017", False), (5, "2017", True), (8, "2025", False), (9, "2025", True),
     (0, "unknown", False), (1, "unknown", True), (12, "unknown", False)],
)  # fmt: skip
def test_the_version_comes_from_flag_bits_2_and_up(flag, version, ack):
    packet = decode_frame(frame(f"ST=27;CN=2011;MN=V;Flag={flag};CP=&&&&"))
    assert (packet.version, packet.ack_wanted, packet.split_packet) == (version, ack, False)
    has_warning = any("carries protocol version" in w for w in packet.warnings)
    assert has_warning == (version == "unknown")


@pytest.mark.parametrize(("flag", "version"), [(6, "2017"), (7, "2017"), (10, "2025")])
def test_a_split_packet_carries_its_number_and_count(flag, version):
    packet = decode_frame(frame(f"ST=27;CN=2051;MN=V;Flag={flag};PNUM=3;PNO=2;CP=&&&&"))
    assert packet.split_packet
    assert (packet.pnum, packet.pno, packet.version) == (3, 2, version)
    assert packet.warnings == ()


def test_pnum_and_pno_without_the_split_bit_are_accepted_with_a_warning():
    packet = decode_frame(frame("ST=27;CN=2051;MN=V;Flag=4;PNO=1;PNUM=1;CP=&&&&"))
    assert (packet.pnum, packet.pno, packet.split_packet) == (1, 1, False)
    assert packet.warnings == ("PNUM/PNO are present, but Flag=4 does not mark a split packet",)


# --- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [("1.2", 1.2), ("-3", -3.0), ("+0.5", 0.5), (".5", 0.5), ("7.", 7.0), ("1.5E2", 150.0),
     ("", None)],
)  # fmt: skip
def test_values_read_as_numbers(text, number):
    assert parse_number(text) == number


@pytest.mark.parametrize("text", ["N", "nan", "inf", "1e999", "1_000", " 1", "1,5", "--1"])
def test_values_that_are_not_finite_numbers_are_refused(text):
    with pytest.raises(ValueError, match="is not a number"):
        parse_number(text)


def test_hj212_times_are_china_standard_time():
    assert parse_cst_time("20260101000000") == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="day is out of range"):
        parse_cst_time("20260230000000")
    with pytest.raises(ValueError, match="not 14 digits"):
        parse_cst_time("２０２６０１０１０００００")  # full-width digits, which isdigit() takes


# --- replies ---------------------------------------------------------------------------------


def test_a_data_reply_echoes_qn_pw_and_mn_with_st_91_and_no_ack():
    reply = build_reply(decode_frame(STANDARD_EXAMPLE), "9014")
    data = (
        b"QN=20160801085857223;ST=91;CN=9014;PW=100000;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&"
    )
    assert reply == frame(data)
    assert decode_frame(reply).warnings == ()


@pytest.mark.parametrize(
    ("flag", "reply_flag"), [(5, 4), (7, 4), (9, 8), (11, 8), (1, 4), (13, 12)]
)
def test_a_reply_keeps_the_packets_version_bits_and_clears_ack_and_split(flag, reply_flag):
    split = ";PNUM=2;PNO=1" if flag & FLAG_SPLIT_PACKET else ""
    data = f"QN=20260101080000000;ST=27;CN=2051;PW=1;MN=V;Flag={flag}{split};CP=&&&&"
    reply = decode_frame(build_reply(decode_frame(frame(data)), "9013"))
    assert (reply.st, reply.cn, reply.flag, reply.pnum) == ("91", "9013", reply_flag, None)
    assert (reply.qn, reply.pw, reply.mn, reply.cp) == ("20260101080000000", "1", "V", {})


def test_a_reply_to_a_2005_style_packet_has_no_qn_and_flag_4():
    packet = decode_frame(frame("ST=32;CN=2011;PW=123456;MN=0873HHMZWSLH02;CP=&&&&"))
    assert build_reply(packet, "9014") == frame(
        "ST=91;CN=9014;PW=123456;MN=0873HHMZWSLH02;Flag=4;CP=&&&&"
    )


def test_replies_other_than_9013_and_9014_are_refused():
    with pytest.raises(ValueError, match="9014 or 9013, not CN='9011'"):
        build_reply(decode_frame(STANDARD_EXAMPLE), "9011")


def test_a_password_a_reply_cannot_carry_is_refused_without_being_quoted():
    packet = decode_frame(frame("ST=32;CN=2011;PW=open=sesame;MN=V;CP=&&&&"))
    with pytest.raises(ValueError, match="PW contains HJ 212 separators") as caught:
        build_reply(packet, "9014")
    assert "sesame" not in str(caught.value)


# --- round trip and fuzz ---------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,9}", fullmatch=True).filter(
    lambda name: name not in ("DataTime", "SampleTime")
)
codes = st.from_regex(r"[a-z][0-9]{5}", fullmatch=True)
values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=";,=&"),
    max_size=12,
) | st.floats(-1e6, 1e6).map(lambda x: f"{x:.3f}")
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)


@st.composite
def packets(draw: st.DrawFn) -> tuple[Packet, datetime | None]:
    """Packets of every header shape, with an optional DataTime and SampleTimes; and the
    DataTime to the second."""
    flag = draw(st.none() | st.integers(min_value=0, max_value=15))
    split = draw(st.booleans()) if flag is None else bool(flag & FLAG_SPLIT_PACKET)
    pnum = draw(st.integers(min_value=1, max_value=9999)) if split else None
    pno = None if pnum is None else draw(st.integers(min_value=1, max_value=pnum))
    plain = {}
    when = draw(st.none() | times)
    if when is not None:
        plain["DataTime"] = data_time_cst(when)
    plain.update(draw(st.dictionaries(names, values, max_size=3)))
    pollutants = draw(
        st.dictionaries(codes, st.dictionaries(names, values, min_size=1, max_size=4), max_size=6)
    )
    for fields in pollutants.values():
        sample = draw(st.none() | times)
        if sample is not None:
            fields["SampleTime"] = data_time_cst(sample)
    packet = Packet(
        qn=draw(st.none() | st.from_regex(r"[0-9]{17}", fullmatch=True)),
        st=draw(st.from_regex(r"[0-9]{2}", fullmatch=True)),
        cn=draw(st.from_regex(r"[0-9]{4}", fullmatch=True)),
        pw=draw(st.none() | values),
        mn=draw(st.from_regex(r"[A-Za-z0-9]{1,24}", fullmatch=True)),
        flag=flag,
        pnum=pnum,
        pno=pno,
        cp=CpSegment.of(plain, pollutants),
    )
    return packet, None if when is None else when.replace(microsecond=0)


@given(packets())
def test_every_encoded_packet_decodes_back_to_its_fields(drawn):
    packet, data_time = drawn
    decoded = decode_frame(encode_packet(packet))
    assert (decoded.qn, decoded.st, decoded.cn, decoded.pw, decoded.mn) == (
        packet.qn, packet.st, packet.cn, packet.pw, packet.mn,
    )  # fmt: skip
    assert (decoded.flag, decoded.pnum, decoded.pno) == (packet.flag, packet.pnum, packet.pno)
    assert decoded.cp == dict(packet.cp.plain)
    assert decoded.pollutants == {code: dict(fields) for code, fields in packet.cp.pollutants}
    assert decoded.data_time == data_time
    for code, fields in packet.cp.pollutants:
        sample_time = decoded.sample_time(code)
        written = dict(fields).get("SampleTime")
        assert written == (None if sample_time is None else data_time_cst(sample_time))


def decodes_or_says_why(
    raw: bytes, crc_variant: CrcVariant = CrcVariant.STANDARD, lenient_length: bool = False
) -> DecodedPacket | Hj212Error:
    """The packet, or the Hj212Error (any other exception fails the test)."""
    try:
        return decode_frame(raw, crc_variant=crc_variant, lenient_length=lenient_length)
    except Hj212Error as error:
        return error


def said_why(result: DecodedPacket | Hj212Error) -> bool:
    return isinstance(result, DecodedPacket) or (result.kind in ERROR_KINDS and result.reason != "")


@given(st.binary(max_size=1200), st.sampled_from(list(CrcVariant)), st.booleans())
@example(b"##", CrcVariant.STANDARD, False)
@example(b"##0000FFFF", CrcVariant.STANDARD, False)
def test_arbitrary_bytes_never_raise_anything_but_hj212_error(raw, variant, lenient):
    assert said_why(decodes_or_says_why(raw, crc_variant=variant, lenient_length=lenient))
    assert said_why(decodes_or_says_why(b"##" + raw, crc_variant=variant, lenient_length=lenient))


fragments = st.sampled_from(
    ["QN=", "ST=", "CN=", "PW=", "MN=", "Flag=", "PNUM=", "PNO=", "CP=&&", "&&", ";", ",", "=",
     "-", "DataTime=", "SampleTime=", "a24088", "-Rtd", "20260101080000", "20261399000000", "0",
     "1", "6", "-1.5", "27", "2051", "9021", "20160801085857223", "99999999999999999999", "V1",
     "flag", "pw", "\x00", "\xe4"]
) | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=4)  # fmt: skip


nonsense = st.lists(fragments, max_size=12).map("".join)
header_items = st.tuples(
    st.sampled_from(["QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO", "flag", "X"]), nonsense
).map("=".join)
valid_header = st.permutations(
    ["QN=20160801085857223", "ST=27", "CN=2051", "PW=x", "MN=V1", "Flag=4"]
).map(";".join)
cp_items = st.tuples(
    st.sampled_from(["DataTime", "SampleTime", "a24088-Rtd", "a24088-Flag", "a24088-", "-", "k"])
    | nonsense,
    nonsense,
).map("=".join)
data_segments = (
    nonsense
    | st.builds("{};CP=&&{}&&".format, st.lists(header_items, max_size=9).map(";".join), nonsense)
    | st.builds(
        "{};{}CP=&&{}&&".format,
        valid_header,
        st.lists(header_items, max_size=2).map(lambda items: "".join(f"{i};" for i in items)),
        st.lists(cp_items, max_size=6).map(";".join),
    )
)


@given(data_segments, st.sampled_from([b"\r\n", b"\n", b""]))
def test_well_framed_nonsense_never_raises_anything_but_hj212_error(data, end):
    """A right length and CRC around arbitrary text, so the header and CP parsers see it."""
    result = decodes_or_says_why(frame(data.encode("latin-1"), end=end))
    assert said_why(result)
    if isinstance(result, DecodedPacket):
        assert result.data_segment == data
        if result.pw is None or not set(result.pw) & set(",=&"):  # else a reply cannot carry it
            assert decode_frame(build_reply(result, "9014")).cn == "9014"
