"""Accounting one batch of readings (stream.accounting): dead letters, offsets, watermarks,
counters, standard coal, reconciliation against the ledger and what rows add to the rollups.

Times are UTC unless they say CST. T0 = 2026-03-02 00:00 UTC = 08:00 CST, on every quarter-hour
and hour boundary. Lateness, per partition, on the axis of interval ends:

    ---------|----------------------|-----------|----->  interval end
           limit                    W        max_end     W = max_end - grace (the watermark)
     = W - allowed_lateness
    ends <= limit: too late (stored with aggregated=False, not in any rollup); after it: on time
"""

import itertools
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.readings import (
    READING_MODELS,
    ElectricityReading,
    EnergyType,
    Reading,
    encode_reading,
)
from plans.coal_factors import CoalFactors
from plans.register import EnterpriseEntry, MeterEntry, Register
from stream.accounting import (
    OFF_PERIOD_START,
    UNREGISTERED,
    WINDOW_SIZES,
    Accountant,
    Accounted,
    Accounting,
    AccountingConfig,
    Contribution,
    Dimensions,
    LedgerRow,
    PartitionState,
    Reconciled,
    Settled,
    contribution,
    contributions,
    counter_meters,
    decode_records,
    reconcile,
    settle,
    windows_of,
)
from stream.batch import RawRecord
from stream.counters import CounterConfig, CounterTracker, Flag
from stream.standard_coal import StandardCoal, china_date
from tests.strategies import aware_datetimes

CODE_A = "91610702MA6YT00013"  # a steelworks in Hanzhong
CODE_B = "91140802MA0K00002B"  # a chemicals plant in Yuncheng
CODE_UNKNOWN = "91350100MA2Y00003P"  # a valid code the register does not hold

REGISTER = Register(
    name="accounting-test",
    enterprises=(
        EnterpriseEntry(
            code=CODE_A, name="Steelworks", city="Hanzhong", county="610702", industry="steel"
        ),
        EnterpriseEntry(
            code=CODE_B, name="Chemicals", city="Yuncheng", county="140802", industry="chemicals"
        ),
    ),
    meters=(
        MeterEntry(meter_id="E1", enterprise_code=CODE_A, energy_type=EnergyType.ELECTRICITY),
        MeterEntry(
            meter_id="PV1",
            enterprise_code=CODE_A,
            energy_type=EnergyType.ELECTRICITY,
            excluded_from_totals="renewable",
        ),
        MeterEntry(
            meter_id="G1",
            enterprise_code=CODE_B,
            energy_type=EnergyType.NATURAL_GAS,
            excluded_from_totals="feedstock",
        ),
    ),
)
FACTORS = CoalFactors.load()
ACCOUNTANT = Accountant(REGISTER, StandardCoal(FACTORS))

T0 = datetime(2026, 3, 2, tzinfo=UTC)
NOW = T0 + timedelta(days=2)
QUARTER = timedelta(minutes=15)
TOPIC = "energywatch.readings"

Payload = Reading | bytes | None


def reading(
    minutes: float = 0,
    kwh: float | None = 1.0,
    *,
    meter: str = "E1",
    code: str = CODE_A,
    counter: float | None = None,
    start: datetime = T0,
    interval: int = 900,
) -> ElectricityReading:
    """An electricity reading for the interval starting ``minutes`` after ``start``."""
    return ElectricityReading(
        enterprise_code=code,
        meter_id=meter,
        period_start=start + timedelta(minutes=minutes),
        interval_seconds=interval,
        consumption_kwh=kwh,
        counter_kwh=counter,
    )


def of_type(
    energy_type: EnergyType,
    quantity: float,
    *,
    meter: str = "X1",
    code: str = CODE_A,
    at: datetime = T0,
) -> Reading:
    """A consumption reading of any energy type, in its contract unit."""
    model = READING_MODELS[energy_type]
    fields = {f"consumption_{model.physical_unit.lower()}": quantity}
    return model(enterprise_code=code, meter_id=meter, period_start=at, **fields)


def wire(payload: Payload) -> bytes | None:
    if payload is None or isinstance(payload, bytes):
        return payload
    return encode_reading(payload)


def records(*payloads: Payload, partition: int = 0, first: int = 0) -> list[RawRecord]:
    """One record per payload, at consecutive offsets from ``first``."""
    return [RawRecord(wire(p), TOPIC, partition, first + i) for i, p in enumerate(payloads)]


def account(
    recs: Sequence[RawRecord],
    partitions: dict[int, PartitionState] | None = None,
    tracker: CounterTracker | None = None,
    now: datetime = NOW,
    accountant: Accountant = ACCOUNTANT,
) -> Accounting:
    return accountant.account(
        decode_records(recs),
        partitions if partitions is not None else {},
        tracker if tracker is not None else CounterTracker(CounterConfig()),
        now,
    )


def tight(**config: timedelta) -> Accountant:
    """An accountant with its own lateness settings."""
    return Accountant(REGISTER, StandardCoal(FACTORS), AccountingConfig(**config))


def rows_of(result: Accounting) -> list[LedgerRow]:
    return [a.row for a in result.rows]


class InMemoryLedger:
    """The storage adapter's part (stream.ledger_writer), in memory: new keys are inserted,
    clashes reconciled, and the contributions kept as the rollups would add them up. Partition
    states and the counter tracker carry over from batch to batch."""

    def __init__(self, accountant: Accountant = ACCOUNTANT) -> None:
        self.accountant = accountant
        self.rows: dict[tuple[str, datetime], LedgerRow] = {}
        self.partitions: dict[int, PartitionState] = {}
        self.tracker = CounterTracker(CounterConfig())
        self.contributions: list[Contribution] = []
        self.rejected: list[str] = []
        self.settled: list[Settled] = []  # the last batch's

    def write(self, recs: Sequence[RawRecord], now: datetime = NOW) -> Accounting:
        result = self.accountant.account(decode_records(recs), self.partitions, self.tracker, now)
        inserted: list[Accounted] = []
        replaced: list[tuple[LedgerRow, LedgerRow, datetime | None]] = []
        self.settled = []
        for new in result.rows:
            stored = self.rows.get(new.row.key)
            outcome = settle(new, stored)
            self.settled.append(outcome)
            self.rejected.extend(reason for _, reason in outcome.rejected)
            if outcome.row is None:
                continue
            self.rows[new.row.key] = outcome.row
            if stored is None:
                inserted.append(replace(new, row=outcome.row, earlier=()))
            else:
                replaced.append((stored, outcome.row, new.watermark))
        self.contributions.extend(contributions(inserted, replaced, self.accountant.register))
        self.partitions = result.partitions
        return result


Rollups = dict[tuple[str, datetime], tuple[float, float, float, int, int]]


def rollups(parts: Iterable[Contribution]) -> Rollups:
    """Per (meter, window start): tce, tce counted, physical, readings, covered seconds.

    ``math.fsum`` is exact before its one rounding, so a row added and later taken back
    cancels exactly, and equal multisets of rows give equal sums.
    """
    groups: dict[tuple[str, datetime], list[Contribution]] = defaultdict(list)
    for c in parts:
        for start, _end in c.windows:
            groups[(c.meter_id, start)].append(c)
    out: Rollups = {}
    for key, group in groups.items():
        sums = (
            math.fsum(c.tce for c in group),
            math.fsum(c.tce_counted for c in group),
            math.fsum(c.physical for c in group),
            sum(c.readings for c in group),
            sum(c.covered_seconds for c in group),
        )
        if sums != (0.0, 0.0, 0.0, 0, 0):
            out[key] = sums
    return out


def ledger_rollups(ledger: InMemoryLedger) -> Rollups:
    """What the rollups should hold: the aggregated rows of the ledger, each once."""
    return rollups(
        contribution(row, 1, None, REGISTER) for row in ledger.rows.values() if row.aggregated
    )


# --- decoding and dead letters -----------------------------------------------------------------


def test_bad_empty_and_schema_invalid_records_become_dead_letters_with_their_bytes_and_source():
    recs = records(
        b"{oops", None, b'{"energy_type":"electricity"}', reading(), partition=3, first=10
    )
    result = account(recs)
    letters = result.dead_letters
    assert [d.kind for d in letters] == ["not_json", "empty", "wrong_schema"]
    assert letters[0].reason.startswith("not JSON")
    assert letters[1].reason.startswith("empty record")
    assert letters[2].reason.startswith("wrong schema")
    assert "enterprise_code" in letters[2].reason
    assert [d.raw for d in letters] == [b"{oops", b"", b'{"energy_type":"electricity"}']
    assert letters[0].raw_base64 == "e29vcHM="
    assert {(d.source_topic, d.source_partition) for d in letters} == {(TOPIC, 3)}
    assert [d.source_offset for d in letters] == [10, 11, 12]
    assert {(d.stage, d.rejected_at) for d in letters} == {("stream.readings", NOW)}
    assert [a.row.meter_id for a in result.rows] == ["E1"]
    assert result.partitions[3].next_offset == 14  # dead letters are done with too


def test_a_reading_dated_after_now_plus_the_tolerance_is_dead_lettered_as_a_future_timestamp():
    limit = NOW + AccountingConfig().future_tolerance  # for the interval's end
    at_limit = reading(start=limit - QUARTER)
    beyond = reading(start=limit - QUARTER + timedelta(seconds=1), kwh=2.0)
    result = account(records(at_limit, beyond, partition=2))
    assert [a.row.period_start for a in result.rows] == [limit - QUARTER]
    [letter] = result.dead_letters
    assert letter.kind == "future_timestamp"
    assert "clock" in letter.reason
    assert letter.raw == encode_reading(beyond)
    assert (letter.source_partition, letter.source_offset) == (2, 1)
    state = result.partitions[2]
    assert state.next_offset == 2
    assert state.max_event_end == limit  # the future reading did not move it


def test_counter_meters_are_the_decodable_readings_that_carry_a_counter():
    decoded = decode_records(
        records(
            reading(meter="E1"),
            reading(meter="C1", kwh=None, counter=5.0),
            reading(meter="C2", kwh=3.0, counter=5.0),
            b"{oops",
        )
    )
    assert counter_meters(decoded) == {"C1", "C2"}


# --- offsets -----------------------------------------------------------------------------------


def test_records_below_the_next_offset_are_skipped_without_rows_or_dead_letters():
    recs = records(reading(0), b"{oops", reading(15), reading(30), first=3)  # offsets 3..6
    result = account(recs, partitions={0: PartitionState(next_offset=5)})
    assert result.skipped == 2
    assert result.dead_letters == []
    assert [a.record.offset for a in result.rows] == [5, 6]
    assert result.partitions[0].next_offset == 7


def test_a_record_delivered_twice_in_one_batch_is_skipped_the_second_time():
    once = records(reading(0, 5.0))
    result = account(once + once)
    assert (result.skipped, len(result.rows[0].versions()), len(result.rows)) == (1, 1, 1)


def test_the_next_offset_of_each_partition_is_its_last_offset_plus_one():
    recs = [
        *records(reading(0), partition=0, first=7),
        *records(reading(0, meter="E2"), reading(15, meter="E2"), partition=1, first=40),
        *records(b"not json", partition=1, first=45),  # a gap in offsets, then a dead letter
    ]
    result = account(recs, partitions={2: PartitionState(next_offset=9)})
    assert {p: s.next_offset for p, s in result.partitions.items()} == {0: 8, 1: 46, 2: 9}


def test_the_partition_states_handed_in_are_not_changed():
    before = {0: PartitionState(next_offset=1, max_event_end=T0, too_late=2)}
    result = account(records(reading(0), reading(60), first=1), partitions=before)
    assert before == {0: PartitionState(next_offset=1, max_event_end=T0, too_late=2)}
    assert result.partitions[0] is not before[0]
    assert result.partitions[0] == PartitionState(
        next_offset=3, max_event_end=T0 + timedelta(minutes=75), too_late=2
    )


# --- watermarks and lateness -------------------------------------------------------------------


def test_max_event_end_is_the_latest_interval_end_of_the_accepted_readings():
    hourly = [reading(m, interval=3600) for m in (180, 60, 300, 120)]
    result = account(records(*hourly, b"{oops", reading(start=NOW + timedelta(hours=1))))
    assert result.partitions[0].max_event_end == T0 + timedelta(hours=6)


def test_each_row_carries_the_watermark_it_met_before_its_own_reading_counted():
    grace = AccountingConfig().grace
    result = account(records(reading(0), reading(60), reading(30)))
    assert [a.watermark for a in result.rows] == [
        None,
        T0 + QUARTER - grace,
        T0 + timedelta(minutes=75) - grace,
    ]


def test_a_reading_ending_at_the_lateness_limit_is_too_late_and_one_a_second_later_is_not():
    accountant = tight(grace=timedelta(minutes=30), allowed_lateness=timedelta(hours=1))
    max_end = T0 + timedelta(hours=10)
    limit = max_end - timedelta(minutes=30) - timedelta(hours=1)
    # one-second intervals put the interval end exactly where wanted
    late = reading(kwh=4.0, start=limit - timedelta(seconds=1), interval=1)
    on_time = reading(kwh=5.0, start=limit, interval=1)
    state = PartitionState(next_offset=0, max_event_end=max_end, too_late=2)
    result = account(records(late, on_time), partitions={0: state}, accountant=accountant)
    late_row, on_time_row = rows_of(result)
    assert (late_row.aggregated, on_time_row.aggregated) == (False, True)
    assert late_row.consumption == 4.0  # stored in full, just not aggregated
    assert late_row.tce == round(4.0 * 0.1229 / 1000, 9)
    assert result.too_late == 1
    assert result.partitions[0].too_late == 3
    assert result.readings == [on_time]
    assert result.partitions[0].max_event_end == max_end
    assert result.dead_letters == []


def test_a_too_late_reading_does_not_move_the_watermark_or_reach_the_alert_rules():
    accountant = tight(grace=timedelta(0), allowed_lateness=timedelta(hours=1))
    state = PartitionState(max_event_end=T0 + timedelta(hours=5))
    result = account(records(reading(0, 9999.0)), partitions={0: state}, accountant=accountant)
    assert result.too_late == 1
    assert result.readings == []
    assert result.partitions[0].max_event_end == T0 + timedelta(hours=5)


def test_lateness_is_judged_by_each_partitions_own_watermark():
    accountant = tight(grace=timedelta(0), allowed_lateness=timedelta(hours=1))
    recs = [
        *records(reading(600, meter="E1"), reading(0, meter="E1"), partition=0),
        *records(reading(0, meter="E2"), partition=1),  # same instant, quiet partition
    ]
    random.Random(7).shuffle(recs)
    result = account(recs, accountant=accountant)
    aggregated = {(a.record.partition, a.row.period_start): a.row.aggregated for a in result.rows}
    assert aggregated == {
        (0, T0 + timedelta(minutes=600)): True,
        (0, T0): False,
        (1, T0): True,
    }
    assert result.partitions[0].too_late == 1
    assert result.partitions[1].too_late == 0
    assert result.partitions[1].max_event_end == T0 + QUARTER


# --- repeats and corrections within a batch ----------------------------------------------------


def test_the_same_reading_twice_in_a_batch_is_one_row_and_one_duplicate():
    ledger = InMemoryLedger()
    result = ledger.write(records(reading(0, 7.0), reading(0, 7.0)))
    assert len(result.rows) == 1
    assert [v.record.offset for v in result.rows[0].versions()] == [0, 1]
    [settled] = ledger.settled
    assert (settled.duplicates, settled.corrections, settled.row.revision) == (1, 0, 0)


def test_a_second_version_of_a_key_in_a_batch_replaces_the_first():
    ledger = InMemoryLedger()
    result = ledger.write(records(reading(0, 7.0), reading(15, 1.0), reading(0, 8.0)))
    assert [(a.row.period_start, a.row.consumption) for a in result.rows] == [
        (T0, 8.0),
        (T0 + QUARTER, 1.0),
    ]
    assert result.rows[0].record.offset == 2
    assert (ledger.settled[0].duplicates, ledger.settled[0].corrections) == (0, 1)
    assert ledger.rows[("E1", T0)].revision == 1


def test_a_batch_that_changes_a_reading_and_changes_it_back_counts_both_changes():
    # found by the batch-cut property below: 1002, then 1000 and 1002 again in the next batch
    ledger = InMemoryLedger()
    ledger.write(records(counter(0, 1002.0)))
    ledger.write(records(counter(0, 1002.0), counter(0, 1000.0), counter(0, 1002.0), first=1))
    row = ledger.rows[("C1", T0)]
    assert (row.physical_counter, row.quality_flags, row.revision) == (1002.0, ("correction",), 2)
    whole = InMemoryLedger()
    whole.write(records(*(counter(0, c) for c in (1002.0, 1002.0, 1000.0, 1002.0))))
    assert whole.rows == ledger.rows


def test_two_too_late_corrections_of_a_key_in_one_batch_are_both_dead_lettered():
    ledger, later = InMemoryLedger(), T0 + timedelta(days=10)
    ledger.write(records(reading(0, 7.0), reading(15 * 4 * 24 * 9, 1.0)), now=later)
    ledger.write(records(reading(0, 8.0), reading(0, 9.0), first=2), now=later)
    assert len(ledger.rejected) == 2
    assert ledger.rows[("E1", T0)].physical_quantity == 7.0


@st.composite
def batches(draw: st.DrawFn) -> list[RawRecord]:
    """Records over two partitions: consumption and counter meters, repeats, corrections,
    bad records; partition 0 starts with two records already done."""
    out: list[RawRecord] = []
    next_offset = [0, 0]
    counters = {"C1": 1000.0}
    for _ in range(draw(st.integers(min_value=1, max_value=20))):
        partition = draw(st.integers(min_value=0, max_value=1))
        kind = draw(st.sampled_from(["kwh", "counter", "bad"]))
        minutes = 15 * draw(st.integers(min_value=0, max_value=5))
        payload: Payload
        if kind == "kwh":
            meter = f"E{partition}"
            payload = reading(minutes, draw(st.sampled_from([0.0, 1.5, 2.0])), meter=meter)
        elif kind == "counter":
            meter = f"C{partition}"
            counters[meter] = counters.get(meter, 1000.0) + draw(st.sampled_from([0.0, 10.0]))
            payload = reading(minutes, None, meter=meter, counter=counters[meter])
        else:
            payload = b"{oops"
        out.append(RawRecord(wire(payload), TOPIC, partition, next_offset[partition]))
        next_offset[partition] += 1
    return out


@settings(max_examples=60, deadline=None)
@given(recs=batches(), seed=st.integers(min_value=0, max_value=2**32))
def test_records_are_decided_in_partition_and_offset_order_however_they_are_handed_in(recs, seed):
    shuffled = list(recs)
    random.Random(seed).shuffle(shuffled)
    states = {0: PartitionState(next_offset=2)}
    in_order, out_of_order = CounterTracker(CounterConfig()), CounterTracker(CounterConfig())
    expected = account(recs, partitions=states, tracker=in_order)
    actual = account(shuffled, partitions=states, tracker=out_of_order)
    assert actual == expected
    assert out_of_order.snapshot() == in_order.snapshot()


# --- counters ----------------------------------------------------------------------------------


def counter(minutes: float, value: float, kwh: float | None = None) -> ElectricityReading:
    return reading(minutes, kwh, meter="C1", counter=value)


def test_a_counter_meters_consumption_comes_from_its_successive_counters():
    result = account(records(counter(0, 1000.0), counter(15, 1010.5), counter(30, 1030.0)))
    rows = rows_of(result)
    assert [r.consumption for r in rows] == [None, 10.5, 19.5]  # the first: nothing to diff
    assert [r.tce for r in rows] == [None, round(10.5 * 0.1229 / 1000, 9), 0.00239655]
    assert [r.physical_counter for r in rows] == [1000.0, 1010.5, 1030.0]
    assert all(r.physical_quantity is None and r.quality_flags == () for r in rows)
    assert result.counter_meters == {"C1"}


def test_a_counter_meters_first_reading_uses_the_consumption_it_reported():
    result = account(records(counter(0, 1000.0, kwh=12.0), reading(0, 3.0)))
    assert [r.consumption for r in rows_of(result)] == [12.0, 3.0]
    assert result.counter_meters == {"C1"}  # E1 reports no counter


def test_the_trackers_flags_land_in_the_quality_flags_before_the_off_period_flag():
    #   minute     0      15     (30)    45     60          97 (off the 15-minute grid)
    #   register   1000   1010          1030    5           15
    #   consumed   -      10            20      -  reset    10  gap
    recs = records(
        counter(0, 1000.0),
        counter(15, 1010.0),
        counter(45, 1030.0),
        counter(60, 5.0),
        counter(97, 15.0),
    )
    rows = rows_of(account(recs))
    assert [r.quality_flags for r in rows] == [
        (),
        (),
        (Flag.GAP.value,),
        (Flag.RESET.value,),
        (Flag.GAP.value, OFF_PERIOD_START),
    ]
    assert [r.consumption for r in rows] == [None, 10.0, 20.0, None, 10.0]


def test_a_too_late_counter_reading_is_stored_but_not_fed_to_the_tracker():
    ledger = InMemoryLedger(tight(grace=timedelta(0), allowed_lateness=timedelta(hours=1)))
    ledger.write(records(*(counter(15 * i, 1000.0 + 10 * i) for i in range(4)), reading(300)))
    state_before = ledger.tracker.snapshot()

    late = ledger.write(records(counter(60, 1040.0, kwh=10.0), first=5))
    [row] = rows_of(late)
    assert (row.aggregated, row.consumption, row.quality_flags) == (False, 10.0, ())
    assert late.counter_meters == set()
    assert ledger.tracker.snapshot() == state_before

    # the next on-time counter takes up from 1030, as if the late one had never come
    after = ledger.write(records(counter(300, 1100.0), first=6))
    assert [(r.consumption, r.quality_flags) for r in rows_of(after)] == [(70.0, ("gap",))]
    assert after.counter_meters == {"C1"}


# --- standard coal -----------------------------------------------------------------------------

# plans/data/coal_factors.yaml, kgce per contract unit (DOMAIN.md §4)
YAML_FACTORS = {
    EnergyType.ELECTRICITY: 0.1229,
    EnergyType.NATURAL_GAS: 1.2143,
    EnergyType.RAW_COAL: 714.3,
    EnergyType.COKE: 971.4,
    EnergyType.STEAM: 128.6,
    EnergyType.HEAT: 34.12,
    EnergyType.DIESEL: 1457.1,
}


@pytest.mark.parametrize(("energy_type", "kgce"), sorted(YAML_FACTORS.items()))
def test_tce_is_the_consumption_times_its_factor_rounded_to_nine_decimals(energy_type, kgce):
    assert FACTORS.kgce_per_unit(energy_type, china_date(T0))[0] == kgce
    [row] = rows_of(account(records(of_type(energy_type, 123.456))))
    assert row.tce == round(123.456 * kgce / 1000, 9)
    assert row.consumption == 123.456
    assert row.physical_unit == READING_MODELS[energy_type].physical_unit
    if energy_type is not EnergyType.ELECTRICITY:
        assert row.tce_equivalent == row.tce


def test_tce_is_rounded_so_that_no_more_than_nine_decimals_remain():
    [row] = rows_of(account(records(reading(0, 0.333))))
    assert 0.333 * 0.1229 / 1000 != 4.0926e-05
    assert row.tce == 4.0926e-05
    assert row.tce_equivalent == round(0.333 * 0.3020 / 1000, 9)


def test_water_is_accounted_in_cubic_metres_with_no_tce():
    [row] = rows_of(account(records(of_type(EnergyType.WATER, 42.0, meter="W1"))))
    assert (row.consumption, row.physical_unit) == (42.0, "m3")
    assert (row.tce, row.tce_equivalent) == (None, None)


@pytest.mark.parametrize(
    ("at", "china_year", "kgce_per_kwh"),
    [
        (datetime(2021, 12, 31, 15, 45, tzinfo=UTC), 2021, 0.3025),  # 23:45 CST on 31 December
        (datetime(2021, 12, 31, 16, 0, tzinfo=UTC), 2022, 0.3005),  # 00:00 CST on 1 January
        (datetime(2025, 12, 31, 16, 0, tzinfo=UTC), 2026, 0.3020),  # latest year published
    ],
)
def test_electricitys_equal_value_tce_uses_the_factor_of_the_china_local_year(
    at, china_year, kgce_per_kwh
):
    assert china_date(at).year == china_year
    assert FACTORS.electricity_equivalent_on(china_date(at)).kgce_per_kwh == kgce_per_kwh
    [row] = rows_of(account(records(reading(kwh=1000.0, start=at))))
    assert row.tce_equivalent == round(1000.0 * kgce_per_kwh / 1000, 9)
    assert row.tce == 0.1229


def test_meters_the_register_excludes_are_converted_but_not_counted():
    recs = records(
        reading(0, 100.0, meter="PV1"),
        of_type(EnergyType.NATURAL_GAS, 100.0, meter="G1", code=CODE_B),
        reading(0, 100.0, meter="E1"),
        reading(0, 100.0, meter="E-unregistered", code=CODE_UNKNOWN),
    )
    rows = rows_of(account(recs))
    assert [(r.meter_id, r.counted, r.exclusion) for r in rows] == [
        ("PV1", False, "renewable"),
        ("G1", False, "feedstock"),
        ("E1", True, None),
        ("E-unregistered", True, None),
    ]
    assert [r.tce for r in rows] == [0.01229, 0.12143, 0.01229, 0.01229]


# --- off-period timestamps ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "interval", "flagged"),
    [
        (7, 900, True),  # 08:07 UTC = 16:07 CST
        (0, 900, False),
        (15, 900, False),
        (15, 3600, True),  # an hourly reading a quarter past
        (0, 3600, False),
        (16 * 60, 86400, False),  # 16:00 UTC: CST midnight, a day's start
        (0, 86400, True),  # 08:00 CST is no day's start
    ],
)
def test_a_timestamp_off_its_interval_boundary_is_flagged(minutes, interval, flagged):
    [row] = rows_of(account(records(reading(minutes, interval=interval))))
    assert (OFF_PERIOD_START in row.quality_flags) is flagged


# --- reconciling with the stored row -----------------------------------------------------------

STORED = LedgerRow(
    meter_id="E1",
    period_start=T0,
    enterprise_code=CODE_A,
    energy_type="electricity",
    interval_seconds=900,
    physical_quantity=40.0,
    physical_counter=None,
    physical_unit="kWh",
    source="simulator",
    consumption=40.0,
    tce=0.004916,
    tce_equivalent=0.01208,
    counted=True,
    exclusion=None,
    quality_flags=(),
    aggregated=True,
)
RECORD = RawRecord(b"{}", TOPIC, 0, 99)


def arriving(row: LedgerRow, watermark: datetime | None = None) -> Accounted:
    return Accounted(row, RECORD, watermark)


def test_the_same_reading_again_replaces_nothing_however_it_was_accounted():
    accounted_differently = replace(
        STORED, consumption=None, tce=None, quality_flags=("duplicate",), aggregated=False
    )
    assert reconcile(arriving(STORED), STORED).replacement is None
    outcome = reconcile(arriving(accounted_differently), STORED)
    assert (outcome.replacement, outcome.rejected_reason) == (None, None)


def test_a_counter_reading_delivered_again_in_a_later_batch_leaves_the_stored_row():
    ledger = InMemoryLedger()
    ledger.write(records(counter(0, 1000.0), counter(15, 1010.0)))
    again = ledger.write(records(counter(15, 1010.0), first=2))
    [repeat] = rows_of(again)
    assert (repeat.consumption, repeat.quality_flags) == (None, ("duplicate",))
    assert ledger.rows[("C1", T0 + QUARTER)].consumption == 10.0
    assert ledger.rejected == []


def test_a_different_value_replaces_the_stored_row():
    corrected = replace(STORED, physical_quantity=41.0, consumption=41.0, tce=0.0050389)
    outcome = reconcile(arriving(corrected), STORED)
    assert outcome.replacement == replace(corrected, revision=1)
    assert outcome.rejected_reason is None


def test_a_correction_beyond_the_allowed_lateness_is_rejected_and_the_stored_row_kept():
    too_late = replace(STORED, physical_quantity=41.0, consumption=41.0, aggregated=False)
    outcome = reconcile(arriving(too_late), STORED)
    assert outcome.replacement is None
    assert outcome.rejected_reason is not None
    assert "E1" in outcome.rejected_reason
    assert "allowed lateness" in outcome.rejected_reason


def test_a_too_late_correction_of_a_row_that_was_itself_too_late_replaces_it():
    stored = replace(STORED, aggregated=False)
    too_late = replace(stored, physical_quantity=41.0, consumption=41.0)
    assert reconcile(arriving(too_late), stored) == Reconciled(replace(too_late, revision=1))


def test_an_out_of_order_counter_correction_keeps_the_stored_consumption_and_tce():
    #   minute     0      15     30           then, in a later batch:  15 corrected to 1011
    #   register   1000   1010   1020
    ledger = InMemoryLedger()
    ledger.write(records(counter(0, 1000.0), counter(15, 1010.0), counter(30, 1020.0)))
    stored = ledger.rows[("C1", T0 + QUARTER)]
    ledger.write(records(counter(15, 1011.0), first=3))
    row = ledger.rows[("C1", T0 + QUARTER)]
    assert row.physical_counter == 1011.0  # what was sent is kept
    assert row.quality_flags == (Flag.OUT_OF_ORDER.value,)
    assert (row.consumption, row.tce, row.tce_equivalent) == (
        10.0,
        stored.tce,
        stored.tce_equivalent,
    )
    assert ledger_rollups(ledger)[("C1", T0)][2] == 20.0  # the quarter-hours' kWh, kept


def test_an_out_of_order_correction_of_a_row_with_no_consumption_stores_the_new_row():
    new = replace(STORED, physical_counter=5.0, consumption=None, quality_flags=("out_of_order",))
    outcome = reconcile(arriving(new), replace(STORED, consumption=None, revision=3))
    assert outcome.replacement == replace(new, revision=4)


# --- contributions to the rollups --------------------------------------------------------------

FLAGGED = replace(
    STORED,
    quality_flags=(
        Flag.STUCK.value,
        Flag.IMPLAUSIBLE_JUMP.value,
        Flag.RESET.value,
        OFF_PERIOD_START,
    ),
)
SUMMED = (
    "physical",
    "tce",
    "tce_counted",
    "tce_equivalent",
    "readings",
    "covered_seconds",
    "flagged",
    "stuck",
    "jumps",
    "resets",
    "off_period_start",
)


def test_taking_a_row_back_negates_everything_it_added():
    added = contribution(FLAGGED, 1, T0 + timedelta(days=40), REGISTER)
    taken = contribution(FLAGGED, -1, T0 + timedelta(days=40), REGISTER)
    for name in SUMMED:
        assert getattr(added, name) != 0, name
        assert getattr(taken, name) == -getattr(added, name), name
    assert (added.readings, added.covered_seconds) == (1, 900)
    assert (taken.readings, taken.covered_seconds) == (-1, -900)
    assert (added.physical, added.tce, added.tce_equivalent) == (40.0, 0.004916, 0.01208)
    assert added.closed == (True, True, True, True)
    assert taken.closed == (False, False, False, False)  # a take-back closes nothing
    assert (added.windows, added.dims) == (taken.windows, taken.dims)


@pytest.mark.parametrize(
    ("flags", "counts"),
    [
        ((), (0, 0, 0, 0, 0)),
        (("gap",), (1, 0, 0, 0, 0)),
        (("rollover",), (1, 0, 0, 1, 0)),
        (("reset", "gap"), (1, 0, 0, 1, 0)),
        (("stuck",), (1, 1, 0, 0, 0)),
        (("implausible_jump",), (1, 0, 1, 0, 0)),
        ((OFF_PERIOD_START,), (1, 0, 0, 0, 1)),
    ],
)
def test_flags_are_counted_by_category(flags, counts):
    c = contribution(replace(STORED, quality_flags=flags), 1, None, REGISTER)
    assert (c.flagged, c.stuck, c.jumps, c.resets, c.off_period_start) == counts


def test_excluded_meters_add_their_tce_but_nothing_to_the_counted_tce():
    excluded = replace(STORED, meter_id="PV1", counted=False, exclusion="renewable")
    assert contribution(excluded, 1, None, REGISTER).tce_counted == 0.0
    assert contribution(excluded, 1, None, REGISTER).tce == 0.004916
    assert contribution(STORED, 1, None, REGISTER).tce_counted == 0.004916
    assert contribution(excluded, -1, None, REGISTER).tce_counted == 0.0


def test_water_adds_its_volume_but_no_tce_and_stays_out_of_all_energy():
    water = replace(
        STORED,
        meter_id="W1",
        energy_type="water",
        physical_unit="m3",
        physical_quantity=12.0,
        consumption=12.0,
        tce=None,
        tce_equivalent=None,
    )
    c = contribution(water, 1, None, REGISTER)
    assert c.in_all is False
    assert (c.physical, c.tce, c.tce_counted, c.tce_equivalent, c.readings) == (12.0, 0, 0, 0, 1)
    assert contribution(STORED, 1, None, REGISTER).in_all is True


def test_a_row_with_no_consumption_still_counts_as_a_reading_covering_its_interval():
    first_counter = replace(STORED, physical_quantity=None, consumption=None, tce=None)
    c = contribution(
        replace(first_counter, tce_equivalent=None, interval_seconds=3600), -1, None, REGISTER
    )
    assert (c.physical, c.tce, c.readings, c.covered_seconds) == (0.0, 0.0, -1, -3600)


@pytest.mark.parametrize(
    ("watermark", "closed"),
    [
        (None, (False, False, False, False)),
        (T0 + QUARTER - timedelta(seconds=1), (False, False, False, False)),
        (T0 + QUARTER, (True, False, False, False)),  # the quarter ends exactly there
        (T0 + timedelta(hours=1), (True, True, False, False)),
        (T0 + timedelta(hours=16), (True, True, True, False)),  # 16:00 UTC: CST midnight
        (datetime(2026, 3, 31, 16, tzinfo=UTC), (True, True, True, True)),  # 1 April CST
    ],
)
def test_a_window_counts_as_closed_once_its_end_is_at_or_behind_the_watermark(watermark, closed):
    assert contribution(STORED, 1, watermark, REGISTER).closed == closed


def test_an_enterprise_the_register_does_not_know_is_counted_as_unregistered():
    unknown = replace(STORED, enterprise_code=CODE_UNKNOWN)
    assert contribution(unknown, 1, None, REGISTER).dims == Dimensions(
        UNREGISTERED, UNREGISTERED, UNREGISTERED
    )
    assert contribution(STORED, 1, None, REGISTER).dims == Dimensions(
        county="610702", city="Hanzhong", industry="steel"
    )
    gas = replace(STORED, meter_id="G1", enterprise_code=CODE_B)
    assert contribution(gas, 1, None, REGISTER).dims == Dimensions(
        "140802", "Yuncheng", "chemicals"
    )


def test_contributions_add_new_rows_and_swap_replaced_ones_but_never_unaggregated_rows():
    watermark = T0 + timedelta(hours=2)
    late = replace(STORED, meter_id="E9", aggregated=False)
    corrected = replace(STORED, consumption=41.0, tce=0.0050389)
    out = contributions(
        [arriving(STORED, watermark), arriving(late, watermark)],
        [
            (STORED, corrected, watermark),
            (late, replace(late, consumption=1.0), watermark),  # not aggregated either side
        ],
        REGISTER,
    )
    assert [(c.meter_id, c.readings, c.physical) for c in out] == [
        ("E1", 1, 40.0),
        ("E1", -1, -40.0),
        ("E1", 1, 41.0),
    ]
    assert [c.closed[0] for c in out] == [True, False, True]


def test_a_row_replacing_a_too_late_one_is_added_without_taking_anything_back():
    stored = replace(STORED, aggregated=False)
    out = contributions([], [(stored, STORED, None)], REGISTER)
    assert [(c.readings, c.physical) for c in out] == [(1, 40.0)]


# --- windows -----------------------------------------------------------------------------------


def cst_wall(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=CHINA_STANDARD_TIME)


near_cst_midnights = st.builds(
    lambda day, seconds: cst_wall(day.year, day.month, day.day) + timedelta(seconds=seconds),
    st.dates(min_value=date(2000, 1, 2), max_value=date(2099, 12, 30)),
    st.integers(min_value=-3600, max_value=3600),
)
near_cst_month_starts = st.builds(
    lambda year, month, seconds: cst_wall(year, month, 1) + timedelta(seconds=seconds),
    st.integers(min_value=2000, max_value=2099),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=-90, max_value=90),
)


@settings(max_examples=200)
@given(at=st.one_of(aware_datetimes, near_cst_midnights, near_cst_month_starts))
def test_an_instant_lies_in_four_nested_windows_whose_days_and_months_start_at_cst_midnight(at):
    windows = windows_of(at)
    assert len(windows) == len(WINDOW_SIZES)
    for start, end in windows:
        assert start <= at < end
    for (inner_start, inner_end), (outer_start, outer_end) in itertools.pairwise(windows):
        assert outer_start <= inner_start
        assert inner_end <= outer_end
    (quarter, quarter_end), (hour, hour_end), (day, day_end), (month, month_end) = windows
    assert quarter_end - quarter == QUARTER
    assert hour_end - hour == timedelta(hours=1)
    assert day_end - day == timedelta(days=1)
    local = at.astimezone(CHINA_STANDARD_TIME)
    day_local = day.astimezone(CHINA_STANDARD_TIME)
    assert (day_local.date(), day_local.time()) == (local.date(), time(0))
    month_local = month.astimezone(CHINA_STANDARD_TIME)
    end_local = month_end.astimezone(CHINA_STANDARD_TIME)
    assert (month_local.year, month_local.month, month_local.day) == (local.year, local.month, 1)
    assert month_local.time() == end_local.time() == time(0)
    assert end_local.day == 1
    assert (end_local.year * 12 + end_local.month) - (local.year * 12 + local.month) == 1


def test_the_last_afternoon_of_february_in_utc_is_already_march_in_china():
    march = windows_of(datetime(2026, 2, 28, 16, tzinfo=UTC))
    assert march[2] == (datetime(2026, 2, 28, 16, tzinfo=UTC), datetime(2026, 3, 1, 16, tzinfo=UTC))
    assert march[3] == (
        datetime(2026, 2, 28, 16, tzinfo=UTC),
        datetime(2026, 3, 31, 16, tzinfo=UTC),
    )
    february = windows_of(datetime(2026, 2, 28, 15, 59, 59, tzinfo=UTC))
    assert february[3] == (
        datetime(2026, 1, 31, 16, tzinfo=UTC),
        datetime(2026, 2, 28, 16, tzinfo=UTC),
    )
    assert february[0] == (datetime(2026, 2, 28, 15, 45, tzinfo=UTC), march[0][0])


# --- batch boundaries do not matter ------------------------------------------------------------

#: meter, energy type, enterprise: counted, excluded, excluded gas, water of an unknown unit
PLAIN_METERS = (
    ("E1", EnergyType.ELECTRICITY, CODE_A),
    ("PV1", EnergyType.ELECTRICITY, CODE_A),
    ("G1", EnergyType.NATURAL_GAS, CODE_B),
    ("W9", EnergyType.WATER, CODE_UNKNOWN),
)


@st.composite
def streams(draw: st.DrawFn) -> list[RawRecord]:
    """A stream over two partitions (a meter always on the same one): consumption readings with
    repeats and corrections, redeliveries of a key's current version, bad records, and a counter
    meter whose readings move forward (its corrections are of its latest period only)."""
    out: list[RawRecord] = []
    offsets = [0, 0]
    latest: dict[tuple[str, int], bytes] = {}  # (meter, period) -> the version last sent
    counter_period = 0
    for _ in range(draw(st.integers(min_value=1, max_value=30))):
        kind = draw(st.sampled_from(["plain", "plain", "counter", "redeliver", "bad"]))
        if kind == "redeliver" and not latest:
            kind = "bad"
        value: bytes | None
        if kind == "plain":
            index = draw(st.integers(min_value=0, max_value=len(PLAIN_METERS) - 1))
            meter, energy_type, code = PLAIN_METERS[index]
            period = draw(st.integers(min_value=0, max_value=7))
            quantity = draw(st.sampled_from([0.0, 1.0, 2.5, 1234.5678]))
            value = encode_reading(
                of_type(energy_type, quantity, meter=meter, code=code, at=T0 + period * QUARTER)
            )
            latest[(meter, period)] = value
            partition = index % 2
        elif kind == "counter":
            counter_period += draw(st.integers(min_value=0, max_value=2))
            variant = draw(st.integers(min_value=0, max_value=2))
            value = encode_reading(
                counter(15 * counter_period, 1000.0 + 10 * counter_period + variant)
            )
            latest[("C1", counter_period)] = value
            partition = 1
        elif kind == "redeliver":
            meter, period = draw(st.sampled_from(sorted(latest)))
            value = latest[(meter, period)]
            partition = 1 if meter == "C1" else [m for m, _, _ in PLAIN_METERS].index(meter) % 2
        else:
            value, partition = b"{oops", draw(st.integers(min_value=0, max_value=1))
        out.append(RawRecord(value, TOPIC, partition, offsets[partition]))
        offsets[partition] += 1
    return out


def split(recs: Sequence[RawRecord], cuts: Iterable[int]) -> list[Sequence[RawRecord]]:
    bounds = [0, *sorted(cuts), len(recs)]
    return [recs[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_ledger_and_its_rollups_do_not_depend_on_where_batches_begin_and_end(data):
    recs = data.draw(streams())
    cuts = data.draw(st.sets(st.integers(min_value=0, max_value=len(recs)), max_size=6))
    whole = InMemoryLedger()
    whole.write(recs)
    batched = InMemoryLedger()
    for batch in split(recs, cuts):
        batched.write(batch)
    assert batched.rows == whole.rows
    assert batched.partitions == whole.partitions
    assert batched.tracker.snapshot() == whole.tracker.snapshot()
    assert rollups(batched.contributions) == rollups(whole.contributions) == ledger_rollups(whole)
    assert batched.rejected == whole.rejected == []


def test_a_redelivery_after_a_crash_changes_nothing():
    # the batch was made durable, then its offsets were redelivered with one more record
    recs = records(reading(0, 1.0), counter(0, 1000.0), counter(15, 1010.0), reading(0, 2.0))
    once = InMemoryLedger()
    once.write(recs)
    again = InMemoryLedger()
    again.write(recs[:3])
    redelivered = again.write(recs)
    assert redelivered.skipped == 3
    assert again.rows == once.rows
    assert rollups(again.contributions) == rollups(once.contributions)


# --- in one batch as across two ----------------------------------------------------------------


def test_a_too_late_correction_is_handled_alike_inside_one_batch_and_across_two():
    #   offset   0: E1 00:00 1 kWh    1: E1 10:00 (watermark 10:15)    2: E1 00:00 2 kWh, too late
    accountant = tight(grace=timedelta(0), allowed_lateness=timedelta(hours=1))
    recs = records(reading(0, 1.0), reading(600, 1.0), reading(0, 2.0))
    whole = InMemoryLedger(accountant)
    whole.write(recs)
    batched = InMemoryLedger(accountant)
    batched.write(recs[:1])
    batched.write(recs[1:])
    assert batched.rows[("E1", T0)].aggregated  # the on-time 1 kWh is kept, the 2 rejected
    assert len(batched.rejected) == 1
    assert whole.rows == batched.rows
    assert rollups(whole.contributions) == rollups(batched.contributions)


def test_an_out_of_order_counter_correction_keeps_the_consumption_inside_one_batch_too():
    recs = records(
        counter(0, 1000.0), counter(15, 1010.0), counter(30, 1020.0), counter(15, 1011.0)
    )
    whole = InMemoryLedger()
    whole.write(recs)
    batched = InMemoryLedger()
    batched.write(recs[:3])
    batched.write(recs[3:])
    assert batched.rows[("C1", T0 + QUARTER)].consumption == 10.0
    assert whole.rows == batched.rows
    assert ledger_rollups(whole)[("C1", T0)][2] == 20.0
