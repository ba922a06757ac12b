"""Energy per tonne of product over the days and months a change touched, against each unit's
limits (``Lookup.product_config``).

The energy on a product is the unit's controlled total over the period, put on the product
only when it is the unit's single product made in it (the ``product_unit_energy`` view). A
day's and a month's verdicts are different alerts (rule ``product-energy.<product>.day`` and
``...month``): a bad day inside a good month is news of its own.
"""

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from alerts.rules.condition import Condition
from alerts.rules.product_energy import ProductOutput, evaluate_product_energy
from alerts.sources.context import Lookup, output_unit
from alerts.sources.periods import previous_start
from storage.alert_inputs import ProductPeriod, product_periods
from storage.production import EnergyBasis
from stream.windows import WindowSize, window_end

_SIZES = {"day": WindowSize.DAY, "month": WindowSize.MONTH}


def _judge(row: ProductPeriod, lookup: Lookup, end: datetime) -> Condition | None:
    if row.basis != EnergyBasis.SINGLE_PRODUCT.value or row.unit_tce_counted is None:
        return None
    config = lookup.product_config(row.enterprise_code)
    limit = config.limits.get(row.product_code)
    if limit is None:
        return None
    output = row.output_t if output_unit(limit) == "t" else row.output_mwh
    if output is None:
        return None
    kgce = row.unit_tce_counted * 1000
    condition = evaluate_product_energy(
        ProductOutput(row.enterprise_code, row.product_code, end, kgce, output), config
    )
    if condition is None:
        return None
    return replace(condition, rule_id=f"{condition.rule_id}.{row.period}")


async def judge_products(
    conn: psycopg.AsyncConnection[TupleRow],
    lookup: Lookup,
    since: Mapping[str, datetime],
    settled: datetime,
) -> list[Condition]:
    """The product-energy conditions of the settled days and months from the one before
    ``since[code]``'s, for units whose energy or output changed."""
    if not since:
        return []
    firsts = {
        code: {period: previous_start(first, size) for period, size in _SIZES.items()}
        for code, first in since.items()
    }
    days_from = min(f["day"] for f in firsts.values())
    months_from = min(f["month"] for f in firsts.values())
    conditions = []
    for row in await product_periods(conn, sorted(since), days_from, months_from, settled):
        end = window_end(row.period_start, _SIZES[row.period])
        if row.period_start < firsts[row.enterprise_code][row.period] or end > settled:
            continue
        condition = _judge(row, lookup, end)
        if condition is not None:
            conditions.append(condition)
    return conditions
