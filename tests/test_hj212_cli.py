"""``energywatch hj212 decode``: one JSON line per input line, in order, and never a password."""

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from energywatch.hj212_commands import app, decoded_lines, json_value
from ingest.hj212 import CrcVariant
from tests.test_hj212_decode import MINUTE_DATA, frame
from tests.test_hj212_encode import STANDARD_EXAMPLE, bitwise_crc_modbus

PASSWORD = "Op3nSesame"
SECRET_MINUTE = frame(MINUTE_DATA.replace("PW=123456", f"PW={PASSWORD}"))


def decode(*args: str, input: bytes | None = None) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["decode", *args], input=input)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_each_input_line_gets_one_json_line_in_order(tmp_path):
    lines = [
        STANDARD_EXAMPLE,
        b"\r\n",
        SECRET_MINUTE,
        STANDARD_EXAMPLE.replace(b"&&1C80", b"&&1C81"),
        frame("ST=27;CN=9021;PW=1;MN=V1;Flag=4;CP=&&&&", end=b"\n"),
        b"garbage\n",
        STANDARD_EXAMPLE[:-2],  # the last line, without a line end
    ]
    path = tmp_path / "frames.txt"
    path.write_bytes(b"".join(lines))
    answers = decode(str(path))
    assert [answer["ok"] for answer in answers] == [True, False, True, False, True, False, True]
    assert [answer.get("cn") for answer in answers] == [
        "1062", None, "2051", None, "9021", None, "1062",
    ]  # fmt: skip
    assert answers[1] == {"ok": False, "kind": "framing", "error": "the frame is empty"}
    assert answers[3]["error"] == "CRC mismatch: packet says 1C81, computed 1C80"
    assert answers[4]["warnings"] == ["the frame ends in a bare \\n, not \\r\\n"]
    assert answers[6]["warnings"] == ["the frame has no \\r\\n at its end"]


def test_a_decoded_packet_is_written_with_numbers_as_numbers_and_codes_and_flags_as_strings():
    [answer] = decode("-", input=SECRET_MINUTE)
    assert answer == {
        "ok": True,
        "qn": "20260101080000123",
        "st": "27",
        "cn": "2051",
        "mn": "VOC00000000000000000001",
        "flag": 5,
        "pnum": None,
        "pno": None,
        "data_time": "2026-01-01T08:00:00+08:00",
        "cp": {"DataTime": "20260101080000"},
        "pollutants": answer["pollutants"],
        "warnings": [],
    }
    assert answer["pollutants"]["a24088"] == {"Min": 1.1, "Avg": 1.25, "Max": 1.4, "Flag": "N"}
    assert answer["pollutants"]["a00000"] == {"Min": 1200, "Avg": 1250.5, "Max": 1301, "Flag": "N"}
    assert answer["pollutants"]["a01012"]["Max"] == -1


def test_absent_header_fields_and_empty_values_are_null():
    [answer] = decode(
        input=frame("ST=32;CN=2011;MN=X;CP=&&a24088-Rtd=,a24088-Flag=;RtdInterval=30&&")
    )
    assert (answer["qn"], answer["flag"], answer["pnum"], answer["data_time"]) == (
        None, None, None, None,
    )  # fmt: skip
    assert answer["pollutants"] == {"a24088": {"Rtd": None, "Flag": None}}
    assert answer["cp"] == {"RtdInterval": 30}


def test_reading_standard_input_is_the_default():
    assert decode(input=STANDARD_EXAMPLE + STANDARD_EXAMPLE)[1]["mn"] == "010000A8900016F000169DC0"


def test_a_modbus_device_is_decoded_only_with_its_crc_variant():
    data = STANDARD_EXAMPLE[6:-6]
    modbus_frame = frame(data, crc=f"{bitwise_crc_modbus(data):04X}")
    assert decode("--crc-variant", "modbus", input=modbus_frame)[0]["ok"] is True
    assert decode("--crc-variant", "MODBUS", input=modbus_frame)[0]["ok"] is True
    [refused] = decode(input=modbus_frame)
    assert refused["kind"] == "crc_mismatch"
    assert "it matches CRC-16/MODBUS" in refused["error"]


def test_a_wrong_length_is_accepted_only_with_lenient_length():
    wrong = STANDARD_EXAMPLE.replace(b"##0101", b"##0100")
    assert decode(input=wrong)[0]["kind"] == "length_mismatch"
    assert decode("--lenient-length", input=wrong)[0]["ok"] is True


def test_an_unknown_crc_variant_and_a_missing_file_are_usage_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["decode", "--crc-variant", "crc32"], input=b"").exit_code == 2
    missing = runner.invoke(app, ["decode", "absent.txt"])
    assert missing.exit_code == 2
    assert "No such file or directory" in missing.output


@pytest.mark.parametrize(
    "raw",
    [
        SECRET_MINUTE,
        SECRET_MINUTE.replace(b"N&&", b"X&&"),  # CRC mismatch
        frame(MINUTE_DATA.replace("PW=123456", f"PW{PASSWORD}")),  # a PW field without '='
        frame(MINUTE_DATA.replace("PW=123456", f"PW={PASSWORD};PW={PASSWORD}")),
        frame(MINUTE_DATA.replace("PW=123456", f"PWD={PASSWORD}")),
        frame(f"ST=27;CN=1072;PW=1;MN=V;Flag=4;CP=&&NewPW={PASSWORD}&&"),
        frame(f"ST=27;CN=1072;PW=1;MN=V;Flag=4;CP=&&NewPW{PASSWORD}&&"),
        SECRET_MINUTE[: SECRET_MINUTE.index(PASSWORD.encode()) + len(PASSWORD)],
    ],
    ids=["decoded", "crc", "no_equals", "twice", "misspelt", "new_pw", "new_pw_no_equals", "cut"],
)
def test_the_password_is_never_written(raw):
    result = CliRunner().invoke(app, ["decode"], input=raw)
    assert result.stdout.count("\n") == 1
    assert PASSWORD not in result.output


@given(
    st.integers(min_value=0, max_value=len(SECRET_MINUTE)),
    st.integers(min_value=0, max_value=len(SECRET_MINUTE)),
    st.binary(max_size=3),
    st.sampled_from(list(CrcVariant)),
)
def test_no_damage_to_a_frame_makes_the_password_appear(start, stop, insert, variant):
    damaged = SECRET_MINUTE[:start] + insert + SECRET_MINUTE[stop:]
    [line] = decoded_lines(iter([damaged]), variant)
    json.loads(line)
    assert PASSWORD not in line


@given(st.lists(st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")), max_size=8))
def test_any_input_gets_exactly_one_valid_json_line_per_line(lines):
    answers = list(decoded_lines(iter([line + b"\n" for line in lines]), CrcVariant.STANDARD))
    assert len(answers) == len(lines)
    for answer in answers:
        assert json.loads(answer)["ok"] in (True, False)


@pytest.mark.parametrize(
    ("name", "text", "written"),
    [
        ("Avg", "1.20", 1.2),
        ("Cou", "123456789012", 123456789012),
        ("Rtd", "-3", -3),
        ("Rtd", "", None),
        ("Rtd", "1e999", "1e999"),
        ("Rtd", "nan", "nan"),
        ("Rtd", "9" * 30, 1e30),
        ("Flag", "N", "N"),
        ("EFlag", "1", "1"),
        ("SampleTime", "20260101080000", "20260101080000"),
        ("PolId", "1", "1"),
        ("QnRtn", "1", "1"),
        ("NewPW", "123456", "(not shown)"),
    ],
)
def test_values_are_written_by_what_their_field_means(name, text, written):
    value = json_value(name, text)
    assert value == written
    assert type(value) is type(written)
