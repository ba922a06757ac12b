"""On the data clock an hour's VOC average is judged only once the monitor's own data has
passed the hour: judging part of an hour made a replayed alert's first value depend on
where the worker's batches ended (the fault suite's kills found it)."""

from datetime import UTC, datetime, timedelta

from alerts.sources.voc import _complete_hours
from contracts.voc import VocSample


def sample(monitor: str, at: datetime, interval_seconds: int) -> VocSample:
    return VocSample.model_construct(
        monitor_id=monitor,
        enterprise_code="911408823P52853E17",
        data_time=at,
        interval_seconds=interval_seconds,
        values={},
    )


T0 = datetime(2026, 3, 3, 6, tzinfo=UTC)


def test_an_hour_is_judged_once_a_minute_of_a_later_hour_is_stored():
    hours = [sample("A", T0, 3600), sample("A", T0 + timedelta(hours=1), 3600)]
    up_to_06_59 = [sample("A", T0 + timedelta(minutes=m), 60) for m in range(60)]
    assert _complete_hours(hours, up_to_06_59) == []
    into_07 = [*up_to_06_59, sample("A", T0 + timedelta(minutes=61), 60)]
    assert _complete_hours(hours, into_07) == [hours[0]]


def test_each_monitor_is_judged_by_its_own_progress():
    hours = [sample("A", T0, 3600), sample("B", T0, 3600)]
    minutes = [sample("A", T0 + timedelta(minutes=70), 60), sample("B", T0, 60)]
    assert _complete_hours(hours, minutes) == [hours[0]]
