"""``energywatch bench side-by-side``: every contender does the same job, and the benchmark
refuses to compare contenders that did not."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.peers.rollup_job import ReadingTce
from benchmarks.peers.rollup_tables import Totals
from benchmarks.side_by_side import (
    ORDER,
    RollupMismatch,
    as_energywatch_counts,
    check_same_rollups,
    differences,
    held_jumps,
    markdown,
    run,
    timed,
)
from benchmarks.stream import _accounted_rows, _readings
from stream.windows import WindowSize, window_start

DAY = datetime(2026, 3, 1, 16, tzinfo=UTC)  # 2026-03-02 00:00 China time


def test_a_peer_takes_each_reading_at_the_tce_the_worker_accounts_it():
    records = _readings(5, 400)
    rows = asyncio.run(_accounted_rows(5, records))
    to_tce = ReadingTce()
    compared = 0
    for (_, value), row in zip(records, rows, strict=True):
        part = to_tce(value)
        if row.energy_type == "water":
            assert part is None
            continue
        assert part is not None
        assert (part.unit, part.period_start) == (row.enterprise_code, row.period_start)
        assert part.tce == row.tce
        compared += 1
    assert compared > 100


def with_load_step(records, meter: str, from_index: int, factor: float):
    """``records`` with ``meter``'s consumption ``factor`` times higher from its
    ``from_index``-th reading on, its register moving with it (a real load step)."""
    out, seen, extra = [], 0, 0.0
    for key, value in records:
        fields = json.loads(value)  # consumption_<unit> and counter_<unit>, as sent
        if fields["meter_id"] == meter:
            used = next(f for f in fields if f.startswith("consumption_"))
            counter = next(f for f in fields if f.startswith("counter_"))
            if seen >= from_index:
                more = fields[used] * (factor - 1)
                extra += more
                fields[used] = round(fields[used] + more, 3)
                fields[counter] = round(fields[counter] + extra, 3)
                value = json.dumps(fields).encode()
            seen += 1
        out.append((key, value))
    return out


def in_process_totals(pairs) -> dict[str, Totals]:
    """(unit, window start) -> tce for both windows, from (unit, period start, tce) triples."""
    out: dict[str, Totals] = {"15m": {}, "1d": {}}
    for unit, period_start, tce in pairs:
        for window in out:
            key = (unit, window_start(period_start, WindowSize(window)))
            out[window][key] = out[window].get(key, Decimal(0)) + Decimal(str(tce))
    return out


def test_a_held_load_step_is_the_one_difference_allowed_and_only_as_a_move():
    """EnergyWatch holds a real load step's first reading and counts it with the next one; the
    peers count it where it came. Moving it makes the totals equal; not moving it does not."""
    records = _readings(5, 400)  # 16 readings a meter
    meter = next(m for m in (json.loads(v)["meter_id"] for _, v in records) if m.endswith("-EL01"))
    records = with_load_step(records, meter, from_index=10, factor=30)
    rows = asyncio.run(_accounted_rows(5, records))
    to_tce = ReadingTce()
    parts = [p for p in (to_tce(v) for _, v in records) if p is not None]
    peers = in_process_totals((p.unit, p.period_start, p.tce) for p in parts)
    ours = in_process_totals(
        (r.enterprise_code, r.period_start, r.tce if r.tce is not None else 0)
        for r in rows
        if r.energy_type != "water"
    )

    jumps = held_jumps(rows, records)

    assert len(jumps) == 1
    assert jumps[0].counted_with - jumps[0].held == timedelta(minutes=15)
    assert differences(ours["15m"], peers["15m"])  # unmoved, the quarters differ
    check_same_rollups("quix_streams", ours, as_energywatch_counts(peers, jumps))


def test_a_record_that_is_not_a_reading_adds_nothing():
    to_tce = ReadingTce()
    assert to_tce(None) is None
    assert to_tce(b"not json") is None
    assert to_tce(b'{"schema_version": 1, "energy_type": "electricity"}') is None


totals = st.dictionaries(
    st.tuples(st.sampled_from(["U1", "U2", "U3"]), st.integers(0, 5)).map(
        lambda k: (k[0], DAY + timedelta(days=k[1]))
    ),
    st.decimals(min_value=0, max_value=10_000, places=9),
    max_size=12,
)


@given(totals)
def test_totals_agree_with_themselves(reference):
    assert differences(reference, dict(reference)) == []


@given(totals.filter(bool), st.data())
def test_a_total_off_by_more_than_a_nanotonne_is_a_difference(reference, data):
    key = data.draw(st.sampled_from(sorted(reference)))
    other = {**reference, key: reference[key] + Decimal("2e-9")}
    found = differences(reference, other)
    assert len(found) == 1
    assert key[0] in found[0]


def test_missing_and_extra_windows_are_differences():
    reference = {("U1", DAY): Decimal("1.5"), ("U2", DAY): Decimal(2)}
    other = {("U1", DAY): Decimal("1.5000000005"), ("U3", DAY): Decimal(2)}
    assert differences(reference, other) == [
        f"missing U2 {DAY.isoformat()}",
        f"extra U3 {DAY.isoformat()}",
    ]


def test_a_peer_with_other_totals_fails_the_benchmark_loudly():
    reference = {"15m": {("U1", DAY): Decimal(1)}, "1d": {("U1", DAY): Decimal(1)}}
    other = {"15m": {("U1", DAY): Decimal(1)}, "1d": {("U1", DAY): Decimal("1.1")}}
    with pytest.raises(RollupMismatch, match="quix_streams's rollups differ"):
        check_same_rollups("quix_streams", reference, other)


def test_the_rate_counts_only_the_work_after_the_first_progress_seen():
    # launched at 0; a tenth of the work seen at 2 s (start-up, first batch); all at 11 s
    drained = timed(10_000, 1000, 0.0, (2.0, 100), 11.0, None)
    assert drained.sustained
    assert drained.seconds == 9.0
    assert drained.seconds_including_startup == 11.0
    assert drained.per_second == pytest.approx(10_000 * 0.9 / 9.0)


def test_a_run_mostly_done_at_its_first_sighting_is_timed_from_launch_and_flagged():
    drained = timed(10_000, 1000, 0.0, (2.0, 900), 3.0, 50.0)
    assert not drained.sustained
    assert drained.seconds == 3.0
    assert drained.per_second == pytest.approx(10_000 / 3.0)
    assert drained.as_json()["peak_rss_mib"] == 50.0


@pytest.mark.services
@pytest.mark.timeout(600)
def test_every_contender_on_two_thousand_readings_stores_energywatchs_rollups(local_stack):
    """The real run, small: EnergyWatch's worker, the Quix Streams app and the plain consumer
    each on the same 2,000 readings, against the local Kafka and TimescaleDB. ``run`` raises
    ``RollupMismatch`` if a peer's per-unit 15-minute or daily totals differ from the worker's
    by more than 1e-9 t."""
    results = run(local_stack, readings=2000, units=10, report=lambda message: None)

    assert set(results["same_result"]) == {"quix_streams", "plain_consumer"}
    for text in results["same_result"].values():
        assert text.startswith("equal to EnergyWatch's within 1E-9 t: 10 unit-days")
    assert set(results["contenders"]) == set(ORDER)
    for name, contender in results["contenders"].items():
        assert contender["records"] == 2000, name
        assert contender["per_second"] > 0, name
    ours = results["contenders"]["energywatch"]
    assert ours["energywatch_ratio"] == 1.0
    assert ours["peak_rss_mib"] > 20  # a whole Python process, read from /proc
    assert 0 < results["readings_in_tce_rollups"] < 2000  # water is in no tce total

    document = {
        "at": "2026-11-21T00:00:00+00:00",
        "commit": "abc1234",
        "machine": {"cpus": 2, "platform": "Linux", "python": "3.11"},
        "results": results,
    }
    table = markdown(document)
    for name in ORDER:
        assert f"| {name} |" in table
    assert "EnergyWatch ≥ 3.0× quix_streams" in table
