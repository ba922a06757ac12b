"""Every query of every dashboard panel, for tests and the panel-query benchmark.

``panel_queries()`` walks the dashboards as the builder makes them and returns each target's
raw SQL or PromQL exactly as it stands in the dashboard JSON; ``default_variables()`` is a
sensible selection of the template variables for running the SQL ones (expand them with
``dashboards.grafana_macros.expand_sql``).
"""

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class PanelQuery:
    dashboard_uid: str
    panel_title: str
    ref_id: str
    datasource: Literal["timescaledb", "prometheus"]
    expr: str  # the raw SQL or PromQL exactly as in the dashboard JSON


def panel_queries() -> list[PanelQuery]:
    """Every target of every panel of every dashboard."""
    raise NotImplementedError("dashboards are being built (issue 7)")


def default_variables() -> dict[str, list[str] | str]:
    """A sensible selection of the dashboards' variables for running SQL queries."""
    raise NotImplementedError("dashboards are being built (issue 7)")
