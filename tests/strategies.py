"""Hypothesis strategies for the wire contracts."""

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

from contracts.alert_events import AlertEvent, AlertKind, AlertSeverity
from contracts.identifiers import uscc_check_character
from contracts.readings import READING_MODELS, ElectricityReading, NaturalGasReading, Reading

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@st.composite
def enterprise_codes(draw: st.DrawFn) -> str:
    head = draw(st.text(USCC_CHARS, min_size=2, max_size=2))
    area = draw(st.text("0123456789", min_size=6, max_size=6))
    org = draw(st.text(USCC_CHARS, min_size=9, max_size=9))
    first17 = head + area + org
    return first17 + uscc_check_character(first17)


meter_ids = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-", min_size=1, max_size=64
)

offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)

aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)

quantities = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)


@st.composite
def electricity_readings(draw: st.DrawFn) -> ElectricityReading:
    return ElectricityReading(
        enterprise_code=draw(enterprise_codes()),
        meter_id=draw(meter_ids),
        period_start=draw(aware_datetimes),
        interval_seconds=draw(st.sampled_from([900, 1800, 3600, 86400])),
        consumption_kwh=draw(quantities),
    )


@st.composite
def gas_readings(draw: st.DrawFn) -> NaturalGasReading:
    return NaturalGasReading(
        enterprise_code=draw(enterprise_codes()),
        meter_id=draw(meter_ids),
        period_start=draw(aware_datetimes),
        consumption_m3=draw(quantities),
        source=draw(st.sampled_from(["simulator", "https", "mqtt", "hj212"])),
    )


@st.composite
def any_readings(draw: st.DrawFn) -> Reading:
    """A reading of any energy type, with consumption, counter or both."""
    model = draw(st.sampled_from(list(READING_MODELS.values())))
    suffix = model.physical_unit.lower()
    which = draw(st.sampled_from(["consumption", "counter", "both"]))
    values = {}
    if which in ("consumption", "both"):
        values[f"consumption_{suffix}"] = draw(quantities)
    if which in ("counter", "both"):
        values[f"counter_{suffix}"] = draw(quantities)
    return model(
        enterprise_code=draw(enterprise_codes()),
        meter_id=draw(meter_ids),
        period_start=draw(aware_datetimes),
        **values,
    )


readings = st.one_of(electricity_readings(), gas_readings(), any_readings())


@st.composite
def alert_events(draw: st.DrawFn) -> AlertEvent:
    finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15)
    hex32 = st.text("0123456789abcdef", min_size=32, max_size=32)
    regional = draw(st.booleans())
    return AlertEvent(
        event_id=draw(hex32),
        alert_id=draw(hex32),
        kind=draw(st.sampled_from(AlertKind)),
        rule_id=draw(st.text("abcdefghijklmnopqrstuvwxyz-.", min_size=1, max_size=64)),
        severity=draw(st.sampled_from(AlertSeverity)),
        enterprise_code=None if regional else draw(enterprise_codes()),
        region_code=draw(st.none() | st.from_regex(r"\A\d{6}\Z")),
        subject=draw(meter_ids),
        value=draw(st.none() | finite),
        threshold=draw(st.none() | finite),
        unit="kWh",
        message=draw(st.text(min_size=1, max_size=200)),
        started_at=draw(aware_datetimes),
        at=draw(aware_datetimes),
        emitted_at=draw(aware_datetimes),
        replay=draw(st.booleans()),
        deliver=draw(st.booleans()),
    )
