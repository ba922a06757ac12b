"""A VOC sample's contract JSON written directly, with the contract's own checks.

The HJ 212 gateway turns every packet into a ``VocSample``; validating and dumping a model per
packet costs about a quarter of the gateway's time. This performs the checks the model would
(pollutant codes, data flags, the data time on its interval's boundary, at least one value)
and writes the bytes ``encode_voc_sample`` would; a hypothesis test holds the two
byte-identical. Numbers whose formatting only the model can vouch for return ``None``: the
caller then builds the model.
"""

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

from contracts.json_text import json_number, utc_timestamp
from contracts.voc import DataFlag

_CODE: Final = re.compile(r"[a-z][0-9]{5}")
_FLAGS: Final = frozenset(flag.value for flag in DataFlag)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_CST: Final = timedelta(hours=8)
_ALIGNMENT: Final = {
    60: "a whole minute",
    3600: "a whole hour",
    86_400: "midnight China Standard Time",
}

#: (avg, min, max, cou, flag) of one pollutant
Values = tuple[float | None, float | None, float | None, float | None, str]


def check_sample(data_time: datetime, interval_seconds: int, values: Mapping[str, Values]) -> None:
    """Raise ``ValueError`` with the contract's reason when the sample would be refused."""
    if not values:
        raise ValueError("a sample has at least one pollutant value")
    for code, (_avg, _min, _max, _cou, flag) in values.items():
        if not _CODE.fullmatch(code):
            raise ValueError(f"{code!r} is not an HJ 212 pollutant code (a letter, five digits)")
        if flag not in _FLAGS:
            raise ValueError(f"{code}-Flag={flag!r} is not one of N F M S D C T B")
    if (data_time - _EPOCH + _CST) % timedelta(seconds=interval_seconds):
        raise ValueError(
            f"data_time {data_time.astimezone(UTC).isoformat()} of a {interval_seconds} s "
            f"sample must be {_ALIGNMENT[interval_seconds]}"
        )


def voc_sample_json(
    monitor_id: str,
    enterprise_code: str,
    data_time: datetime,
    interval_seconds: int,
    values: Mapping[str, Values],
    source: str,
) -> bytes | None:
    """The JSON ``encode_voc_sample`` would write for a checked sample, or None (see above)."""
    parts = []
    for code, (avg, low, high, cou, flag) in values.items():
        numbers = [json_number(v) for v in (avg, low, high, cou)]
        if None in numbers:
            return None
        parts.append(
            f'"{code}":{{"avg":{numbers[0]},"min":{numbers[1]},"max":{numbers[2]},'
            f'"cou":{numbers[3]},"flag":"{flag}"}}'
        )
    return (
        f'{{"schema_version":1,"monitor_id":"{monitor_id}","enterprise_code":"{enterprise_code}",'
        f'"data_time":"{utc_timestamp(data_time)}","interval_seconds":{interval_seconds},'
        f'"values":{{{",".join(parts)}}},"source":"{source}"}}'
    ).encode()
