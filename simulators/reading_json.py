"""The reading contract's JSON, written without building a pydantic model per reading.

Simulators emit hundreds of thousands of readings a second; validating and dumping a model for
each costs more than generating it. This writes the same bytes ``contracts.readings``'s
``encode_reading`` would (a test proves it for every energy type), and falls back to the
model for values whose float formatting could differ (very large or very small numbers).
"""

from contracts.json_text import SAFE_MAX, SAFE_MIN, json_number, utc_timestamp
from contracts.readings import READING_MODELS, EnergyType, Reading, encode_reading
from simulators.records import MeterSample


def _suffix(energy_type: EnergyType) -> str:
    return READING_MODELS[energy_type].physical_unit.lower()


# The constant middle of each energy type's JSON, built once, e.g. '"energy_type":"coke",...'
_TYPE_PARTS: dict[EnergyType, tuple[str, str]] = {
    t: (f'"energy_type":"{t.value}","consumption_{_suffix(t)}":', f',"counter_{_suffix(t)}":')
    for t in EnergyType
}


def encode_sample(sample: MeterSample, source: str = "simulator") -> bytes:
    """The JSON reading for a sample, byte-identical to the contract's encoder."""
    code, meter_id, energy_type, period_start, interval_seconds, consumption, counter = sample
    # the common case inline: floats in the range where repr matches the model's JSON
    if (
        consumption.__class__ is float
        and SAFE_MIN <= consumption < SAFE_MAX
        and counter.__class__ is float
        and SAFE_MIN <= counter < SAFE_MAX
    ):
        consumption_text: str | None = repr(consumption)
        counter_text: str | None = repr(counter)
    else:
        consumption_text = json_number(consumption)
        counter_text = json_number(counter)
        if consumption_text is None or counter_text is None:
            return encode_reading(to_reading(sample, source))
    type_part, counter_part = _TYPE_PARTS[energy_type]
    return (
        f'{{"schema_version":1,"enterprise_code":"{code}","meter_id":"{meter_id}",'
        f'"period_start":"{utc_timestamp(period_start)}","interval_seconds":{interval_seconds},'
        f'"source":"{source}",{type_part}{consumption_text}{counter_part}{counter_text}}}'
    ).encode()


def to_reading(sample: MeterSample, source: str = "simulator") -> Reading:
    """The validated contract model for a sample (slow path, and the reference)."""
    suffix = _suffix(sample.energy_type)
    return READING_MODELS[sample.energy_type](
        enterprise_code=sample.enterprise_code,
        meter_id=sample.meter_id,
        period_start=sample.period_start,
        interval_seconds=sample.interval_seconds,
        source=source,
        **{f"consumption_{suffix}": sample.consumption, f"counter_{suffix}": sample.counter},
    )
