"""Every dashboard, as the foundation SDK builds it and as the JSON Grafana provisions.

``dashboards/json/<uid>.json`` holds :func:`render` of each, committed, so docker-compose
provisions them without a build step; ``energywatch dashboards build`` rewrites them and a
test fails when the committed files differ from what the builders make now.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard, RowPanel

from dashboards import overview, pipeline, quality, unit, voc

#: the package's folder of committed JSON
JSON_DIR: Final = Path(__file__).parent / "json"
#: the Grafana folder the dashboards live in (provisioning names it too)
FOLDER_UID: Final = "energywatch"
FOLDER_TITLE: Final = "EnergyWatch"

BUILDERS: Final[tuple[Callable[[], Dashboard], ...]] = (
    overview.build,
    unit.build,
    voc.build,
    quality.build,
    pipeline.build,
)


def dashboards() -> list[Dashboard]:
    """Every dashboard, panels numbered 1, 2, ... in layout order (rows included)."""
    built = []
    for build in BUILDERS:
        dashboard = build()
        for number, panel in enumerate(dashboard.panels or (), start=1):
            panel.id_val = number
        built.append(dashboard)
    return built


def as_json(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a plain dict)."""
    loaded: dict[str, Any] = json.loads(JSONEncoder().encode(dashboard))
    return loaded


def render(dashboard: Dashboard) -> str:
    """The dashboard's JSON file: sorted keys, two-space indent, a final newline."""
    return json.dumps(as_json(dashboard), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(out_dir: Path = JSON_DIR) -> list[Path]:
    """Write ``<uid>.json`` for every dashboard into ``out_dir``; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for dashboard in dashboards():
        path = out_dir / f"{dashboard.uid}.json"
        path.write_text(render(dashboard), encoding="utf-8")
        written.append(path)
    return written


def is_row(panel: object) -> bool:
    return isinstance(panel, RowPanel)
