"""Simulated VOC monitors: deterministic, plausible, flagged on schedule, and HJ 212 on the wire.

Times: China Standard Time is UTC+8, so a CST day starts at 16:00 UTC the day before and CST
10:00 is 02:00 UTC.
"""

import functools
import re
from datetime import UTC, datetime, timedelta
from statistics import fmean, mean

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from contracts.voc import (
    POLLUTANT_UNITS,
    DataFlag,
    PollutantValue,
    VocDecodeError,
    VocSample,
    decode_voc_sample,
    encode_voc_sample,
)
from ingest.hj212 import MAX_DATA_SEGMENT_BYTES, crc16_hj212
from simulators.voc import (
    ANALYSER_CODES,
    DECIMALS,
    GB_37822_NMHC,
    NMHC,
    PARAMETER_CODES,
    CalibrationSchedule,
    ExceedanceEpisode,
    FlagProbabilities,
    VocMonitorProfile,
    hourly_sample,
    simulated_voc_monitors,
    voc_packet,
    voc_samples,
)
from tests.strategies import aware_datetimes, enterprise_codes

CODE = "91350100M000100Y43"  # a published example of a valid unified social credit code
CST_MIDNIGHT = datetime(2026, 3, 1, 16, tzinfo=UTC)  # Monday 2026-03-02 00:00 CST
DAY = 1440
QUIET = FlagProbabilities(maintenance_per_day=0, fault_per_day=0)


def profile(**changes) -> VocMonitorProfile:
    """A GB 37822 fugitive monitor: NMHC ~3 mg/m³ by day against limits of 10 (hour) and 30
    (single reading); calibration daily at 03:00 CST for 12 minutes; no faults unless asked."""
    fields = {
        "monitor_id": "610702VOC0001",
        "enterprise_code": CODE,
        "password": SecretStr("123456"),
        "limits": {NMHC: GB_37822_NMHC},
        "baseline_mg_m3": {
            NMHC: 3.0,
            "a05002": 1.6,
            "a25002": 0.03,
            "a25003": 0.15,
            "a25005": 0.12,
        },
        "flow_m3_s": 20.0,
        "flag_probabilities": QUIET,
        "calibration": CalibrationSchedule(minute_of_day_cst=180, duration_minutes=12),
    }
    return VocMonitorProfile(**(fields | changes))


def minutes_of(samples):
    return [s for s in samples if s.interval_seconds == 60]


def hours_of(samples):
    return [s for s in samples if s.interval_seconds == 3600]


def cst_hour(sample: VocSample) -> int:
    return (sample.data_time.hour + 8) % 24


def avg_of(sample: VocSample, code: str = NMHC) -> float:
    """The sample's average of ``code``, which the test expects to be reported."""
    value = sample.values[code].avg
    assert value is not None, f"{code} has no average at {sample.data_time}"
    return value


def frame_parts(frame: bytes) -> tuple[int, bytes, str]:
    """(length field, data segment, CRC field) of an HJ 212 frame, its header and end checked."""
    assert frame[:2] == b"##"
    assert frame[-2:] == b"\r\n"
    return int(frame[2:6]), frame[6:-6], frame[-6:-2].decode("ascii")


def packets(monitor: VocMonitorProfile, minutes: int, seed: int) -> list[bytes]:
    return [
        voc_packet(s, monitor.password.get_secret_value(), s.data_time + timedelta(seconds=75))
        for s in voc_samples(monitor, CST_MIDNIGHT, minutes, seed)
    ]


# --- determinism -----------------------------------------------------------------------------


def test_the_same_seed_gives_byte_identical_packets():
    monitor = profile(flag_probabilities=FlagProbabilities(maintenance_per_day=1, fault_per_day=1))
    assert packets(monitor, DAY, seed=3) == packets(monitor, DAY, seed=3)


def test_a_different_seed_or_monitor_gives_different_packets():
    assert packets(profile(), 120, seed=3) != packets(profile(), 120, seed=4)
    other = profile(monitor_id="610702VOC0002")
    values = [s.values for s in voc_samples(profile(), CST_MIDNIGHT, 60, 3)]
    assert values != [s.values for s in voc_samples(other, CST_MIDNIGHT, 60, 3)]


def test_a_days_events_do_not_depend_on_when_the_run_started():
    monitor = profile(flag_probabilities=FlagProbabilities(maintenance_per_day=1, fault_per_day=1))
    two_days = minutes_of(voc_samples(monitor, CST_MIDNIGHT, 2 * DAY, seed=9))
    second_day = minutes_of(voc_samples(monitor, CST_MIDNIGHT + timedelta(days=1), DAY, seed=9))
    flags = [s.values[NMHC].flag for s in second_day]
    assert [s.values[NMHC].flag for s in two_days[DAY:]] == flags
    assert {"C", "M"} <= set(flags)


def test_every_minute_is_reported_once_and_every_full_hour_after_its_last_minute():
    samples = list(voc_samples(profile(), CST_MIDNIGHT + timedelta(minutes=30), 150, seed=1))
    assert len(minutes_of(samples)) == 150
    # 00:30–03:00 CST covers the hours 01:00 and 02:00 fully; 00:00 only partly
    assert [cst_hour(h) for h in hours_of(samples)] == [1, 2]
    hour_one = samples.index(hours_of(samples)[0])
    assert samples[hour_one - 1].data_time == hours_of(samples)[0].data_time.replace(minute=59)


# --- shape -----------------------------------------------------------------------------------


@functools.cache
def a_quiet_week() -> list[VocSample]:
    """The normal minutes of a week of the quiet monitor."""
    samples = minutes_of(voc_samples(profile(), CST_MIDNIGHT, 7 * DAY, seed=5))
    return [s for s in samples if s.values[NMHC].flag is DataFlag.NORMAL]


def test_daytime_nmhc_exceeds_night_nmhc():
    normal = a_quiet_week()
    day = mean(avg_of(s) for s in normal if 10 <= cst_hour(s) < 16)
    night = mean(avg_of(s) for s in normal if 0 <= cst_hour(s) < 4)
    assert day > 1.5 * night


def test_the_morning_inversion_raises_nmhc_above_the_small_hours():
    normal = a_quiet_week()
    dawn = mean(avg_of(s) for s in normal if cst_hour(s) == 6)
    small_hours = mean(avg_of(s) for s in normal if cst_hour(s) in (1, 2))
    assert dawn > 1.3 * small_hours


def test_ambient_and_flue_gas_parameters_stay_in_plausible_ranges():
    samples = minutes_of(voc_samples(profile(), CST_MIDNIGHT, 3 * DAY, seed=2))
    normal = [s for s in samples if s.values[NMHC].flag is DataFlag.NORMAL]
    assert all(1.0 <= avg_of(s, "a05002") <= 2.5 for s in normal)
    assert all(19.0 <= avg_of(s, "a19001") <= 20.5 for s in samples)
    assert all(100.0 <= avg_of(s, "a01013") <= 102.0 for s in samples)
    assert all(30.0 <= avg_of(s, "a01014") <= 90.0 for s in samples)
    # flow's total is the m³ of the minute (each rounded: avg to 3 decimals, cou to 2)
    for s in samples:
        assert s.values["a00000"].cou == pytest.approx(avg_of(s, "a00000") * 60, abs=0.035)
    second_day = [avg_of(s, "a01012") for s in samples[DAY : 2 * DAY]]
    assert max(second_day) - min(second_day) > 6  # a diurnal cycle


def test_minimum_average_and_maximum_are_ordered_whenever_given():
    for sample in voc_samples(profile(), CST_MIDNIGHT, DAY, seed=4):
        for value in sample.values.values():
            if value.avg is not None:
                assert value.min is not None
                assert value.max is not None
                assert value.min <= value.avg <= value.max


# --- flags -----------------------------------------------------------------------------------


def test_calibration_minutes_carry_flag_c_on_schedule_and_only_then():
    samples = minutes_of(voc_samples(profile(), CST_MIDNIGHT, 3 * DAY, seed=6))
    calibrating = [s.data_time for s in samples if s.values[NMHC].flag is DataFlag.CALIBRATION]
    # 03:00–03:11 CST is 19:00–19:11 UTC the day before
    expected = [
        CST_MIDNIGHT + timedelta(days=day, hours=3, minutes=m)
        for day in range(3)
        for m in range(12)
    ]
    assert calibrating == expected
    for sample in samples:
        if sample.data_time in expected:
            assert {sample.values[c].flag for c in ANALYSER_CODES if c in sample.values} == {"C"}
            assert {sample.values[c].flag for c in PARAMETER_CODES} == {"N"}


def test_calibration_reads_zero_gas_then_span_gas():
    samples = minutes_of(voc_samples(profile(), CST_MIDNIGHT, 4 * 60, seed=6))
    readings = [s.values[NMHC].avg for s in samples if s.values[NMHC].flag is DataFlag.CALIBRATION]
    assert all(r < 0.2 for r in readings[:6])
    assert all(r > 40 for r in readings[6:])


def test_maintenance_sends_empty_values_and_faults_stick_at_the_last_normal_reading():
    monitor = profile(flag_probabilities=FlagProbabilities(maintenance_per_day=1, fault_per_day=1))
    samples = minutes_of(voc_samples(monitor, CST_MIDNIGHT, 3 * DAY, seed=8))
    maintenance = [s.values[NMHC] for s in samples if s.values[NMHC].flag is DataFlag.MAINTENANCE]
    faults = [s.values[NMHC] for s in samples if s.values[NMHC].flag is DataFlag.FAULT]
    assert maintenance
    assert all(v.avg is None and v.min is None and v.max is None for v in maintenance)
    assert faults
    last_normal = None
    for sample in samples:
        value = sample.values[NMHC]
        if value.flag is DataFlag.NORMAL:
            last_normal = value.avg
        elif value.flag is DataFlag.FAULT:
            assert value.min == value.avg == value.max == last_normal  # stuck


def minute(at: datetime, flag: str, avg: float | None, code: str = NMHC) -> VocSample:
    return VocSample(
        monitor_id="VOC1",
        enterprise_code=CODE,
        data_time=at,
        interval_seconds=60,
        values={code: PollutantValue(avg=avg, min=avg, max=avg, flag=DataFlag(flag))},
    )


def an_hour(flags: str, normal: float = 2.0, other: float = 99.0) -> list[VocSample]:
    """Minute samples of the hour from 02:00 UTC, one per character of ``flags``."""
    start = datetime(2026, 3, 2, 2, tzinfo=UTC)
    return [
        minute(start + timedelta(minutes=i), f, normal + i / 100 if f == "N" else other)
        for i, f in enumerate(flags)
    ]


def test_the_hourly_average_comes_only_from_normal_minutes():
    minutes = an_hour("N" * 50 + "C" * 10)
    hour = hourly_sample(minutes).values[NMHC]
    assert hour.avg == round(fmean(2.0 + i / 100 for i in range(50)), 3)
    assert hour.max == 2.49  # the C minutes' 99 do not count
    assert hour.flag is DataFlag.NORMAL


def test_an_hour_is_valid_with_three_quarters_of_its_minutes_normal():
    assert hourly_sample(an_hour("N" * 45 + "M" * 15)).values[NMHC].flag is DataFlag.NORMAL
    assert hourly_sample(an_hour("N" * 44 + "M" * 16)).values[NMHC].flag is DataFlag.MAINTENANCE


def test_an_invalid_hour_takes_its_most_common_other_flag_and_ties_go_to_the_first_seen():
    assert hourly_sample(an_hour("N" * 30 + "D" * 20 + "C" * 10)).values[NMHC].flag == "D"
    assert hourly_sample(an_hour("N" * 40 + "C" * 10 + "D" * 10)).values[NMHC].flag == "C"


def test_missing_minutes_count_against_the_hour_as_communication_faults():
    hour = hourly_sample(an_hour("N" * 40)).values[NMHC]
    assert hour.flag is DataFlag.COMMUNICATION_FAULT
    assert hour.avg is not None  # still the normal minutes' mean, for information


def test_an_hour_without_normal_minutes_has_no_average():
    assert hourly_sample(an_hour("M" * 60)).values[NMHC].avg is None


def test_minutes_from_another_hour_are_refused():
    minutes = [*an_hour("N" * 59), minute(datetime(2026, 3, 2, 3, tzinfo=UTC), "N", 1.0)]
    with pytest.raises(ValueError, match="outside the hour"):
        hourly_sample(minutes)


def test_simulated_hours_follow_the_rule_for_every_code():
    """Every hourly sample of a faulty monitor agrees with its minutes by the 75% rule."""
    monitor = profile(flag_probabilities=FlagProbabilities(maintenance_per_day=1, fault_per_day=1))
    samples = list(voc_samples(monitor, CST_MIDNIGHT, 4 * DAY, seed=12))
    by_hour: dict[datetime, list[VocSample]] = {}
    for s in minutes_of(samples):
        by_hour.setdefault(s.data_time.replace(minute=0), []).append(s)
    flags_seen = set()
    for hour in hours_of(samples):
        for code, value in hour.values.items():
            normal = [
                avg_of(m, code) for m in by_hour[hour.data_time] if m.values[code].flag == "N"
            ]
            flags_seen.add(value.flag)
            assert (value.flag == "N") == (len(normal) >= 45)
            if normal:
                assert value.avg == round(fmean(normal), DECIMALS[code])
    assert {"N", "M", "D"} <= flags_seen


def test_hourly_flow_total_is_the_sum_of_the_minutes_volumes():
    samples = list(voc_samples(profile(), CST_MIDNIGHT, 60, seed=1))
    total = sum(s.values["a00000"].cou for s in minutes_of(samples))
    assert hours_of(samples)[0].values["a00000"].cou == pytest.approx(total, abs=0.01)


# --- exceedances -----------------------------------------------------------------------------


def test_a_forced_episode_lifts_the_hourly_average_over_the_limit_exactly_in_its_hours():
    # 2026-03-03 10:00–12:00 CST
    episode = ExceedanceEpisode(
        start=CST_MIDNIGHT + timedelta(days=1, hours=10), duration=timedelta(hours=2), factor=1.2
    )
    samples = list(voc_samples(profile(exceedance_episodes=(episode,)), CST_MIDNIGHT, 3 * DAY, 7))
    over = [h.data_time for h in hours_of(samples) if h.values[NMHC].avg > 10]
    assert over == [episode.start, episode.start + timedelta(hours=1)]
    end = episode.start + episode.duration
    in_episode = [s for s in minutes_of(samples) if episode.start <= s.data_time < end]
    assert all(s.values[NMHC].avg > 30 for s in in_episode)  # every reading over the single limit
    assert all(h.values[NMHC].flag == "N" for h in hours_of(samples) if h.data_time in over)


def test_random_episodes_happen_and_only_when_asked_for():
    calm = hours_of(voc_samples(profile(), CST_MIDNIGHT, 7 * DAY, seed=3))
    stormy_monitor = profile(exceedance_probability_per_day=1)
    stormy = hours_of(voc_samples(stormy_monitor, CST_MIDNIGHT, 7 * DAY, seed=3))
    assert max(h.values[NMHC].avg for h in calm if h.values[NMHC].avg is not None) < 10
    over = {h.data_time.date() for h in stormy if (h.values[NMHC].avg or 0) > 10}
    assert len(over) >= 5


# --- packets ---------------------------------------------------------------------------------


def test_every_packet_of_a_simulated_fleet_is_a_valid_frame_within_1024_bytes():
    fleet = simulated_voc_monitors(6, seed=1)
    # stack monitors measure the most codes and send the longest packets
    assert {"GB 31571-2015", "GB 37822-2019"} <= {m.standard for m in fleet}
    for monitor in fleet:
        for frame in packets(monitor, DAY, seed=1):
            length, data, crc = frame_parts(frame)
            assert length == len(data) <= MAX_DATA_SEGMENT_BYTES
            assert crc == f"{crc16_hj212(data):04X}"


def test_packets_carry_the_sample_as_hj212_voc_data():
    samples = list(voc_samples(profile(), CST_MIDNIGHT, 60, seed=1))
    _, minute_data, _ = frame_parts(voc_packet(samples[0], "123456", samples[0].data_time))
    _, hour_data, _ = frame_parts(voc_packet(samples[-1], "123456", samples[-1].data_time))
    assert minute_data.startswith(
        b"QN=20260302000000000;ST=27;CN=2051;PW=123456;MN=610702VOC0001;Flag=5;"
        b"CP=&&DataTime=20260302000000;a24088-Avg="
    )
    assert b";CN=2061;" in hour_data
    flow = (
        rb"a00000-Avg=[\d.]+,a00000-Min=[\d.]+,a00000-Max=[\d.]+,a00000-Cou=[\d.]+,a00000-Flag=N;"
    )
    assert re.search(flow, hour_data)
    assert b"a24088-Cou" not in hour_data


def test_missing_values_go_out_empty():
    sample = VocSample(
        monitor_id="VOC1",
        enterprise_code=CODE,
        data_time=CST_MIDNIGHT,
        interval_seconds=60,
        values={NMHC: PollutantValue(flag=DataFlag.MAINTENANCE)},
    )
    _, data, _ = frame_parts(voc_packet(sample, "123456", CST_MIDNIGHT))
    assert data.endswith(
        b"CP=&&DataTime=20260302000000;a24088-Avg=,a24088-Min=,a24088-Max=,a24088-Flag=M&&"
    )


# --- the contract ----------------------------------------------------------------------------


finite = st.none() | st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def voc_samples_drawn(draw: st.DrawFn) -> VocSample:
    interval = draw(st.sampled_from([60, 3600, 86_400]))
    # aligned to the interval in China Standard Time, then shown in any offset
    start = draw(aware_datetimes)
    aligned = start - (start - datetime(1970, 1, 1, 16, tzinfo=UTC)) % timedelta(seconds=interval)
    return VocSample(
        monitor_id=draw(st.from_regex(r"[A-Za-z0-9]{1,24}", fullmatch=True)),
        enterprise_code=draw(enterprise_codes()),
        data_time=aligned.astimezone(start.tzinfo),
        interval_seconds=interval,
        values=draw(
            st.dictionaries(
                st.sampled_from(sorted(POLLUTANT_UNITS)),
                st.builds(
                    PollutantValue,
                    avg=finite,
                    min=finite,
                    max=finite,
                    cou=finite,
                    flag=st.sampled_from(DataFlag),
                ),
                min_size=1,
            )
        ),
        source=draw(st.sampled_from(["simulator", "hj212"])),
    )


@given(voc_samples_drawn())
def test_every_voc_sample_survives_a_json_round_trip(sample):
    assert decode_voc_sample(encode_voc_sample(sample)) == sample


@given(voc_samples_drawn())
def test_voc_samples_are_stored_in_utc(sample):
    assert sample.data_time.utcoffset() == timedelta(0)


def test_a_sample_must_start_on_its_intervals_boundary():
    with pytest.raises(ValidationError, match="must be a whole hour"):
        VocSample(
            monitor_id="VOC1",
            enterprise_code=CODE,
            data_time=CST_MIDNIGHT + timedelta(minutes=1),
            interval_seconds=3600,
            values={NMHC: PollutantValue(flag=DataFlag.NORMAL)},
        )
    with pytest.raises(ValidationError, match="must be midnight China Standard Time"):
        VocSample(
            monitor_id="VOC1",
            enterprise_code=CODE,
            data_time=datetime(2026, 3, 2, tzinfo=UTC),
            interval_seconds=86_400,
            values={NMHC: PollutantValue(flag=DataFlag.NORMAL)},
        )


def test_a_malformed_sample_is_refused_with_the_field_named():
    payload = encode_voc_sample(minute(CST_MIDNIGHT, "N", 1.0)).replace(b'"N"', b'"X"')
    with pytest.raises(VocDecodeError, match=r"wrong schema: values\.a24088\.flag") as caught:
        decode_voc_sample(payload)
    assert caught.value.kind == "wrong_schema"


def test_every_simulated_code_has_its_unit_documented():
    assert set(ANALYSER_CODES) | set(PARAMETER_CODES) <= set(POLLUTANT_UNITS)
    assert POLLUTANT_UNITS["a00000"].unit == "m3/s"
    assert POLLUTANT_UNITS["a00000"].cou_unit == "m3"
