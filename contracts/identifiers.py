"""Identifier and time types shared by every contract."""

import functools
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Final

from pydantic import AfterValidator, AwareDatetime, StringConstraints

# GB 32100-2015: 18 characters of digits and upper-case letters without I, O, Z, S, V; the
# last is a check character over the first 17.
_USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_character(first17: str) -> str:
    """The check character that completes a unified social credit code's first 17 characters."""
    if len(first17) != 17:
        raise ValueError("a unified social credit code has 17 characters before its check")
    total = sum(_USCC_CHARSET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARSET[(31 - total % 31) % 31]


@functools.lru_cache(maxsize=65_536)  # a fleet's codes repeat in every reading
def _valid_uscc(code: str) -> str:
    if uscc_check_character(code[:17]) != code[17]:
        raise ValueError(f"the check character of unified social credit code {code} is wrong")
    return code


#: The unified social credit code (统一社会信用代码) that identifies a unit.
EnterpriseCode = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9A-HJ-NP-RTUW-Y]{2}\d{6}[0-9A-HJ-NP-RTUW-Y]{10}$"),
    AfterValidator(_valid_uscc),
]

#: A meter or device identifier as the unit's on-site system names it.
MeterId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
]


#: China Standard Time (UTC+8, no daylight saving): day and month boundaries of plans and
#: reports, and HJ 212's DataTime. Everything else is UTC.
CHINA_STANDARD_TIME: Final = timezone(timedelta(hours=8), "CST")


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: A timezone-aware instant, normalised to UTC on the way in so equal instants compare and
#: serialise equal whatever offset the sender used (China Standard Time lives only at the edges).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
