"""Every query of every dashboard panel, for tests and the panel-query benchmark.

``panel_queries()`` walks the dashboards' JSON as the builders make it (the same JSON as the
committed files) and returns each target's raw SQL or PromQL exactly as it stands there;
``default_variables()`` is a selection of the template variables for running the SQL ones
through ``dashboards.grafana_macros.expand_sql``: everything (each variable's All option,
whose custom value is ``'__all'``), which on the unit drill-down means the first unit.
"""

from dataclasses import dataclass
from typing import Any, Literal

from dashboards.catalog import as_json, dashboards
from dashboards.common import ALL_VALUE, PROMETHEUS_UID, TIMESCALEDB_UID
from dashboards.grafana_macros import CustomAllValue


@dataclass(frozen=True)
class PanelQuery:
    dashboard_uid: str
    panel_title: str
    ref_id: str
    datasource: Literal["timescaledb", "prometheus"]
    expr: str  # the raw SQL or PromQL exactly as in the dashboard JSON


def panel_queries() -> list[PanelQuery]:
    """Every target of every panel of every dashboard, in layout order."""
    found: list[PanelQuery] = []
    for dashboard in dashboards():
        model = as_json(dashboard)
        for panel in _panels(model.get("panels", [])):
            for target in panel.get("targets", []):
                source = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
                if source == TIMESCALEDB_UID:
                    found.append(
                        PanelQuery(
                            model["uid"],
                            panel["title"],
                            target["refId"],
                            "timescaledb",
                            target["rawSql"],
                        )
                    )
                elif source == PROMETHEUS_UID:
                    found.append(
                        PanelQuery(
                            model["uid"],
                            panel["title"],
                            target["refId"],
                            "prometheus",
                            target["expr"],
                        )
                    )
                else:
                    raise ValueError(f"{model['uid']}/{panel['title']}: datasource {source!r}")
    return found


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Panels, with those inside collapsed rows."""
    flat = []
    for panel in panels:
        flat.append(panel)
        flat.extend(panel.get("panels", []))
    return flat


def default_variables() -> dict[str, list[str] | str]:
    """Every SQL variable of every dashboard at its All option."""
    return {
        name: CustomAllValue(ALL_VALUE)
        for name in ("city", "county", "industry", "unit", "monitor", "pollutant")
    }
