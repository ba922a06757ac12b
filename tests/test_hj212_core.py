"""What the HJ 212 gateway decides for one frame, without sockets or Kafka."""

import pytest

from ingest.hj212 import crc16_hj212, crc16_modbus, crc_hex, decode_frame
from ingest.hj212_core import handle_frame, mask_password
from plans.register import Register
from tests.hj212_devices import MONITOR, PASSWORD, REGISTER, minute_packets, packet


def test_minute_data_from_a_registered_monitor_becomes_a_sample_and_earns_a_9014_reply():
    raw = minute_packets(1)[0]
    outcome = handle_frame(raw, REGISTER)
    assert outcome.rejection is None
    assert outcome.sample is not None
    assert outcome.sample.monitor_id == MONITOR.monitor_id
    assert outcome.sample.enterprise_code == MONITOR.enterprise_code
    assert outcome.sample.interval_seconds == 60
    assert outcome.sample.source == "hj212"
    reply = decode_frame(outcome.reply)
    assert (reply.cn, reply.st, reply.mn) == ("9014", "91", MONITOR.monitor_id)
    assert reply.qn == decode_frame(raw).qn


def test_an_unknown_device_and_a_wrong_password_are_refused_and_counted_as_auth_failures():
    stranger = handle_frame(packet("2051", mn="NOBODY123"), REGISTER)
    wrong = handle_frame(packet("2051", password="000000"), REGISTER)
    assert stranger.rejection[0] == "unknown_device"
    assert wrong.rejection[0] == "wrong_password"
    assert stranger.auth_failure
    assert wrong.auth_failure
    assert stranger.reply is None
    assert wrong.reply is None
    assert "000000" not in wrong.rejection[1]


def test_the_password_is_masked_in_what_the_gateway_keeps():
    raw = minute_packets(1)[0]
    masked = mask_password(raw)
    assert PASSWORD.encode() not in masked
    assert len(masked) == len(raw)
    assert handle_frame(raw, REGISTER).masked_raw == masked


def test_heartbeats_get_a_notice_reply_and_nothing_is_published():
    outcome = handle_frame(packet("9021"), REGISTER)
    assert outcome.sample is None
    assert outcome.rejection is None
    assert decode_frame(outcome.reply).cn == "9013"
    assert handle_frame(packet("9021", flag=4), REGISTER).reply is None  # no ack asked for


def test_real_time_data_is_acknowledged_but_dead_lettered_as_not_stored():
    outcome = handle_frame(packet("2011"), REGISTER)
    assert decode_frame(outcome.reply).cn == "9014"
    assert outcome.rejection[0] == "not_stored"


def test_data_without_a_data_time_is_a_bad_sample():
    from ingest.hj212 import CpSegment, Packet, encode_packet

    raw = encode_packet(
        Packet(
            qn=None,
            st="27",
            cn="2051",
            pw=PASSWORD,
            mn=MONITOR.monitor_id,
            flag=None,
            cp=CpSegment.of({}, {"a24088": {"Avg": "1.0", "Flag": "N"}}),
        )
    )
    outcome = handle_frame(raw, REGISTER)
    assert outcome.rejection == ("bad_sample", "CN=2051 data has no DataTime")


def _with_modbus_crc(raw: bytes) -> bytes:
    frame = raw.rstrip(b"\r\n")
    data = frame[6:-4]
    assert crc_hex(crc16_hj212(data)).encode() == frame[-4:]
    return frame[:-4] + crc_hex(crc16_modbus(data)).encode() + b"\r\n"


def test_a_modbus_crc_is_accepted_only_from_devices_configured_for_it():
    raw = _with_modbus_crc(minute_packets(1)[0])
    refused = handle_frame(raw, REGISTER)
    assert refused.rejection[0] == "crc_mismatch"
    entries = tuple(
        m.model_copy(update={"crc_variant": "modbus"}) if m.mn == MONITOR.monitor_id else m
        for m in REGISTER.voc_monitors
    )
    configured = Register.model_validate({**REGISTER.model_dump(), "voc_monitors": entries})
    accepted = handle_frame(raw, configured)
    assert accepted.sample is not None


@pytest.mark.parametrize("garbage", [b"", b"\r\n", b"##", b"hello\r\n", b"##9999QN=1\r\n"])
def test_garbage_is_refused_with_a_decoder_reason(garbage):
    outcome = handle_frame(garbage, REGISTER)
    assert outcome.rejection is not None
    assert outcome.sample is None
