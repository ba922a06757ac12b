"""Grafana's PostgreSQL datasource macros and template variables, expanded as Grafana does."""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta


def expand_sql(
    sql: str,
    *,
    time_from: datetime,
    time_to: datetime,
    interval: timedelta,
    variables: Mapping[str, str | Sequence[str]],
) -> str:
    """``sql`` with template variables and macros expanded as Grafana would send it."""
    raise NotImplementedError("being written (issue 7)")
