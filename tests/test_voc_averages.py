"""VOC averages in the stream: hourly from minutes and daily from hours by the 75% rule, and
emission mass."""

from datetime import UTC, datetime, timedelta

import pytest

from contracts.voc import DataFlag, PollutantValue, VocSample
from stream.voc_averages import average, emission_mass_kg

CODE = "91350100M000100Y43"
NMHC, FLOW = "a24088", "a00000"
DAY_START = datetime(2026, 3, 1, 16, tzinfo=UTC)  # 2026-03-02 00:00 China time


def hour(index: int, flag: str, nmhc: float, flow_m3: float = 36_000.0) -> VocSample:
    return VocSample(
        monitor_id="YCVOC0001",
        enterprise_code=CODE,
        data_time=DAY_START + timedelta(hours=index),
        interval_seconds=3600,
        values={
            NMHC: PollutantValue(avg=nmhc, min=nmhc * 0.8, max=nmhc * 1.2, flag=DataFlag(flag)),
            FLOW: PollutantValue(avg=10.0, cou=flow_m3, flag=DataFlag.NORMAL),
        },
    )


def test_a_day_with_18_valid_hours_is_valid_and_averages_only_them():
    hours = [hour(i, "N", 2.0) for i in range(18)] + [hour(i, "M", 99.0) for i in range(18, 24)]
    day = average(hours, 86_400)
    assert day.data_time == DAY_START
    assert day.interval_seconds == 86_400
    assert day.values[NMHC].flag is DataFlag.NORMAL
    assert day.values[NMHC].avg == pytest.approx(2.0)
    assert day.values[NMHC].max == pytest.approx(2.4)


def test_a_day_with_17_valid_hours_is_flagged_with_the_commonest_other_flag():
    hours = [hour(i, "N", 2.0) for i in range(17)] + [hour(i, "D", 5.0) for i in range(17, 20)]
    day = average(hours, 86_400)
    assert day.values[NMHC].flag is DataFlag.COMMUNICATION_FAULT  # 4 missing hours beat 3 D
    assert day.values[NMHC].avg == pytest.approx(2.0)  # still reported, for data quality


def test_the_flow_total_of_a_day_is_the_sum_of_its_valid_hours():
    day = average([hour(i, "N", 1.0) for i in range(24)], 86_400)
    assert day.values[FLOW].cou == pytest.approx(24 * 36_000.0)


def test_hours_of_another_china_day_are_refused():
    hours = [hour(i, "N", 1.0) for i in range(23)] + [hour(24, "N", 1.0)]
    with pytest.raises(ValueError, match="outside the day"):
        average(hours, 86_400)


def test_emission_mass_is_concentration_times_volume():
    # 10 mg/m³ in 36,000 m³ of gas is 0.36 kg
    assert emission_mass_kg(10.0, 36_000.0) == pytest.approx(0.36)
