"""The dashboards as Grafana gets them: valid models, committed JSON equal to the builders',
provisioning that finds them and their datasources, PromQL the real Prometheus accepts, and
the push command's uploads."""

import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard
from typer.testing import CliRunner

from dashboards.catalog import JSON_DIR, as_json, dashboards, render
from dashboards.common import register_sql_variant
from dashboards.queries import panel_queries
from energywatch.cli import app

REPO = Path(__file__).parent.parent
PROVISIONING = REPO / "deploy" / "grafana" / "provisioning"


def _targets(model: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, t) for p in model["panels"] for t in p.get("targets", [])]


def test_each_dashboard_decodes_into_the_sdks_schema_model_and_back_unchanged():
    register_sql_variant()
    for dashboard in dashboards():
        model = as_json(dashboard)
        assert as_json(Dashboard.from_json(model)) == model, model["uid"]


def test_dashboards_have_unique_uids_panel_ids_and_target_ref_ids():
    models = [as_json(d) for d in dashboards()]
    assert len({m["uid"] for m in models}) == len(models) == 5
    for model in models:
        ids = [p["id"] for p in model["panels"]]
        assert ids == list(range(1, len(ids) + 1)), model["uid"]
        for panel in model["panels"]:
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            refs = [t["refId"] for t in panel.get("targets", [])]
            assert len(refs) == len(set(refs)), panel["title"]
            if panel["type"] != "row":
                assert refs, f"{model['uid']} / {panel['title']} has no query"


def test_the_committed_json_is_what_the_builders_make_now():
    for dashboard in dashboards():
        path = JSON_DIR / f"{dashboard.uid}.json"
        assert path.exists(), f"{path}: run `energywatch dashboards build`"
        assert path.read_text("utf-8") == render(dashboard), (
            f"{path} is stale: run `energywatch dashboards build` and commit it"
        )
    assert {p.stem for p in JSON_DIR.glob("*.json")} == {d.uid for d in dashboards()}


def test_dashboards_build_writes_every_dashboard(tmp_path):
    result = CliRunner().invoke(app, ["dashboards", "build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in tmp_path.glob("*.json"))
    assert written == sorted(f"{d.uid}.json" for d in dashboards())


def test_compose_provisions_the_json_and_every_datasource_the_dashboards_use():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text("utf-8"))
    grafana = compose["services"]["grafana"]
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text("utf-8"))
    path = provider["providers"][0]["options"]["path"]
    assert f"./dashboards/json:{path}:ro" in grafana["volumes"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    sources = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text("utf-8"))[
        "datasources"
    ]
    types = {s["uid"]: s["type"] for s in sources}
    for dashboard in dashboards():
        model = as_json(dashboard)
        refs = [t.get("datasource") or p.get("datasource") for p, t in _targets(model)]
        refs += [p["datasource"] for p in model["panels"] if "datasource" in p]
        refs += [v["datasource"] for v in model["templating"].get("list", []) if "datasource" in v]
        for ref in refs:
            assert types.get(ref["uid"]) == ref["type"], (model["uid"], ref)


@pytest.mark.services
def test_every_promql_target_is_accepted_by_the_local_prometheus(local_stack):
    """Each PromQL query, with Grafana's $__rate_interval filled in, run against the real
    Prometheus: a syntax error or an unknown function is status "error"."""
    base = local_stack.prometheus_url
    assert base
    queries = [q for q in panel_queries() if q.datasource == "prometheus"]
    assert len(queries) >= 15
    for query in queries:
        expr = query.expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", (query.panel_title, expr, body)
    names = " ".join(q.expr for q in queries)
    assert "energywatch_stream_consumer_lag_records" in names


# -- push ---------------------------------------------------------------------------------------


class FakeGrafana(ThreadingHTTPServer):
    """A stand-in for Grafana's HTTP API (folders, dashboards), because Grafana cannot run on
    these machines: it keeps what it was sent and answers as Grafana's API documents."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.folders: dict[str, str] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.authorizations: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *_args: object) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.authorizations.add(self.headers.get("Authorization", ""))
        if self.path.startswith("/api/folders/"):
            uid = self.path.rsplit("/", 1)[1]
            if uid in self.server.folders:
                self._answer(200, {"uid": uid, "title": self.server.folders[uid]})
            else:
                self._answer(404, {"message": "folder not found"})
        else:
            self._answer(404, {"message": "not found"})

    def do_POST(self) -> None:
        self.server.authorizations.add(self.headers.get("Authorization", ""))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/api/folders":
            self.server.folders[body["uid"]] = body["title"]
            self._answer(200, {"uid": body["uid"], "title": body["title"]})
        elif self.path == "/api/dashboards/db":
            if body.get("folderUid") not in self.server.folders:
                self._answer(400, {"message": "folder not found"})
                return
            model = body["dashboard"]
            self.server.dashboards[model["uid"]] = body
            self._answer(
                200,
                {
                    "status": "success",
                    "uid": model["uid"],
                    "version": 1,
                    "url": f"/d/{model['uid']}",
                },
            )
        else:
            self._answer(404, {"message": "not found"})


@pytest.fixture
def fake_grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_push_creates_the_folder_and_uploads_every_dashboard_with_the_token(
    fake_grafana, monkeypatch
):
    """Against a stand-in for Grafana's HTTP API (Grafana cannot run here)."""
    monkeypatch.setenv("EW_GRAFANA_TOKEN", "glsa_test_token")
    result = CliRunner().invoke(app, ["dashboards", "push", "--url", fake_grafana.url])
    assert result.exit_code == 0, result.output
    assert "glsa_test_token" not in result.output
    assert fake_grafana.folders == {"energywatch": "EnergyWatch"}
    assert set(fake_grafana.dashboards) == {d.uid for d in dashboards()}
    for uid, body in fake_grafana.dashboards.items():
        assert body["overwrite"] is True
        assert body["folderUid"] == "energywatch"
        assert body["dashboard"]["uid"] == uid
        assert body["dashboard"]["panels"]
    assert fake_grafana.authorizations == {"Bearer glsa_test_token"}

    # a second push finds the folder and overwrites, creating nothing new
    again = CliRunner().invoke(app, ["dashboards", "push", "--url", fake_grafana.url])
    assert again.exit_code == 0, again.output
    assert list(fake_grafana.folders) == ["energywatch"]


def test_push_without_a_token_says_how_to_get_one(fake_grafana, monkeypatch):
    monkeypatch.delenv("EW_GRAFANA_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["dashboards", "push", "--url", fake_grafana.url])
    assert result.exit_code == 2
    assert "EW_GRAFANA_TOKEN" in result.output
    assert fake_grafana.dashboards == {}
