"""The HJ 212 gateway's direct VOC JSON is byte-identical to the contract's, and refuses what
the contract refuses."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.voc import VocSample, encode_voc_sample
from ingest.voc_json import check_sample, voc_sample_json

CODE = "91350100M000100Y43"
numbers = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.floats(min_value=1e15, max_value=1e200),
    st.floats(min_value=-1e-6, max_value=1e-6),
)
values = st.dictionaries(
    st.from_regex(r"[a-z][0-9]{5}", fullmatch=True),
    st.tuples(numbers, numbers, numbers, numbers, st.sampled_from(list("NFMSDCTB"))),
    min_size=1,
    max_size=8,
)
times = st.builds(
    lambda minutes, interval: (
        datetime(2026, 1, 1, tzinfo=UTC)
        - timedelta(hours=8)
        + timedelta(seconds=interval) * minutes,
        interval,
    ),
    st.integers(min_value=0, max_value=500_000),
    st.sampled_from([60, 3600, 86_400]),
)


def model_json(at, interval, vals) -> bytes:
    return encode_voc_sample(
        VocSample.model_validate(
            {
                "monitor_id": "YCVOC0001",
                "enterprise_code": CODE,
                "data_time": at,
                "interval_seconds": interval,
                "source": "hj212",
                "values": {
                    c: dict(zip(("avg", "min", "max", "cou", "flag"), v, strict=True))
                    for c, v in vals.items()
                },
            }
        )
    )


@given(times, values, st.sampled_from([UTC, timezone(timedelta(hours=8))]))
def test_the_direct_json_is_the_contracts_json_or_defers_to_it(time_interval, vals, zone):
    at, interval = time_interval
    at = at.astimezone(zone)
    check_sample(at, interval, vals)
    fast = voc_sample_json("YCVOC0001", CODE, at, interval, vals, "hj212")
    if fast is not None:
        assert fast == model_json(at, interval, vals)


@pytest.mark.parametrize(
    ("at", "interval", "vals"),
    [
        (datetime(2026, 3, 2, 8, 0, 30, tzinfo=UTC), 60, {"a24088": (1.0, None, None, None, "N")}),
        (datetime(2026, 3, 2, 8, 15, tzinfo=UTC), 3600, {"a24088": (1.0, None, None, None, "N")}),
        (datetime(2026, 3, 2, 0, 0, tzinfo=UTC), 86_400, {"a24088": (1.0, None, None, None, "N")}),
        (datetime(2026, 3, 2, 8, 0, tzinfo=UTC), 60, {"B02": (1.0, None, None, None, "N")}),
        (datetime(2026, 3, 2, 8, 0, tzinfo=UTC), 60, {"a24088": (1.0, None, None, None, "X")}),
        (datetime(2026, 3, 2, 8, 0, tzinfo=UTC), 60, {}),
    ],
)
def test_what_the_contract_refuses_the_check_refuses(at, interval, vals):
    with pytest.raises(ValueError, match=r"pollutant|Flag|data_time"):
        check_sample(at, interval, vals)
    with pytest.raises(ValidationError):
        model_json(at, interval, vals)
