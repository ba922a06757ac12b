"""The Alerts API against a real TimescaleDB: who sees what, through every route.

The seeded world (``SEEDS``): two units of Yuncheng (140800) in different counties, Hejin
(140882) and Jishan (140824), a unit of Taiyuan (140100), and a regional alert of Hejin county.
Rows are written straight into ``alerts`` and ``alert_history``, as the evaluator would.
Tests of the pure parts (cursors, regions, tokens, silence policy) need no services.
"""

import asyncio
import hashlib
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from alerts.access import (
    AccessConfig,
    AdminAccess,
    Authenticator,
    Principal,
    PrincipalKind,
    SilenceRefused,
    SupervisorAccess,
    load_access,
    parse_access,
    region_prefix,
)
from alerts.api import create_app
from alerts.routing import region_covers
from contracts.alert_events import AlertEvent, AlertKind, AlertSeverity
from energywatch.alerts_api_commands import token_digest
from energywatch.config_files import ConfigFileError
from plans.register import EnterpriseEntry, MeterEntry, Register, VocMonitorEntry, salted_digest
from storage import alert_store
from storage.alert_queries import CursorError, Position, Scope, decode_cursor, encode_cursor
from tests.conftest import fresh_database

services = pytest.mark.services
EXAMPLE = Path(__file__).resolve().parent.parent / "plans" / "access.example.yaml"

HEJIN = "9114088212JX9EJR64"  # county 140882 (河津), city 140800 (运城)
JISHAN = "91140824ENX1MWJ09E"  # county 140824 (稷山), city 140800
TAIYUAN = "91140100MA0K0000XX"  # county 140105, city 140100 (太原)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _token(name: str) -> str:
    return f"{name}.secret-{hashlib.sha256(name.encode()).hexdigest()[:24]}"


def _unit(code: str, county: str, city: str) -> EnterpriseEntry:
    salt = f"salt-{code}"
    return EnterpriseEntry(
        code=code,
        name=f"unit {code}",
        city=city,
        county=county,
        industry="steel",
        token_salt=salt,
        token_sha256=salted_digest(salt, _token(code)),
    )


REGISTER = Register(
    name="alerts-api-test",
    enterprises=(
        _unit(HEJIN, "140882", "yuncheng"),
        _unit(JISHAN, "140824", "yuncheng"),
        _unit(TAIYUAN, "140105", "taiyuan"),
    ),
    meters=(
        MeterEntry(meter_id="HJ-EL01", enterprise_code=HEJIN, energy_type="electricity"),
        MeterEntry(meter_id="TY-EL01", enterprise_code=TAIYUAN, energy_type="electricity"),
    ),
    voc_monitors=(
        VocMonitorEntry(
            mn="HJVOC01", enterprise_code=HEJIN, password_salt="s", password_sha256="0" * 64
        ),
    ),
)


def _access_entry(kind: str, name: str, region: str | None = None) -> Any:
    salt = f"salt-for-{name}-0123456789"
    digest = salted_digest(salt, _token(name))
    if kind == "admin":
        return AdminAccess(name=name, token_salt=salt, token_sha256=digest)
    return SupervisorAccess(name=name, region_code=region, token_salt=salt, token_sha256=digest)


ACCESS = AccessConfig(
    principals=(
        _access_entry("supervisor", "yuncheng-city", "140800"),
        _access_entry("supervisor", "jishan-county", "140824"),
        _access_entry("supervisor", "xinzhou-city", "140900"),
        _access_entry("supervisor", "shanxi", "140000"),
        _access_entry("admin", "ops"),
    )
)


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(name)}"}


@dataclass(frozen=True)
class Seed:
    """One alert as the evaluator would have left it: two events, the second the latest."""

    name: str
    rule_id: str
    subject: str
    enterprise: str | None
    region: str | None
    severity: AlertSeverity
    resolved: bool
    minutes_ago: int
    replay: bool = False

    @property
    def alert_id(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()[:32]

    @property
    def last_event_at(self) -> datetime:
        return NOW - timedelta(minutes=self.minutes_ago)

    def events(self) -> list[AlertEvent]:
        started = self.last_event_at - timedelta(hours=1)
        kinds = [AlertKind.FIRED, AlertKind.RESOLVED if self.resolved else AlertKind.ESCALATED]
        return [
            AlertEvent(
                event_id=hashlib.sha256(f"{self.name}/{n}".encode()).hexdigest()[:32],
                alert_id=self.alert_id,
                kind=kind,
                rule_id=self.rule_id,
                subject=self.subject,
                enterprise_code=self.enterprise,
                region_code=self.region,
                severity=self.severity,
                message=f"{self.rule_id} on {self.subject}",
                started_at=started,
                at=started + timedelta(minutes=n),
                emitted_at=self.last_event_at - timedelta(minutes=20 * (1 - n)),
                replay=self.replay,
            )
            for n, kind in enumerate(kinds)
        ]


S = AlertSeverity
SEEDS = [
    Seed("hejin-voc", "voc-hourly.a24088", "HJVOC01", HEJIN, "140882", S.CRITICAL, False, 5),
    Seed("hejin-budget", "energy-budget.annual", HEJIN, HEJIN, "140882", S.WARNING, False, 60),
    # no region_code: a supervisor finds it by the division code inside the credit code
    Seed("hejin-silent", "device-silence", "HJ-EL01", HEJIN, None, S.NOTICE, False, 90),
    Seed("hejin-product", "product-energy.coke", HEJIN, HEJIN, "140882", S.INFO, True, 200),
    Seed(
        "hejin-replay", "voc-hourly.a24088", "HJVOC01", HEJIN, "140882", S.CRITICAL, True, 30, True
    ),
    # the same latest-event time as taiyuan-budget: pages must break the tie by id
    Seed("jishan-budget", "energy-budget.annual", JISHAN, JISHAN, "140824", S.WARNING, False, 10),
    Seed("jishan-voc", "voc-single.a24088", "JSVOC01", JISHAN, "140824", S.CRITICAL, True, 120),
    Seed("jishan-quality", "data-quality.uploads", JISHAN, JISHAN, "140824", S.NOTICE, False, 300),
    Seed(
        "taiyuan-budget", "energy-budget.annual", TAIYUAN, TAIYUAN, "140105", S.CRITICAL, False, 10
    ),
    Seed("hejin-barometer", "barometer.county", "140882", None, "140882", S.WARNING, False, 45),
]
BY_NAME = {s.name: s for s in SEEDS}
BY_ID = {s.alert_id: s for s in SEEDS}

#: Silences as the evaluator applied them: (id, enterprise pattern, subject pattern).
SILENCES = [
    ("s-hejin", HEJIN, "*"),
    ("s-jishan", JISHAN, "*"),
    ("s-taiyuan", TAIYUAN, "*"),
    ("s-hejin-county", "*", "140882"),
    ("s-everything", "*", "*"),
]


def ids(*names: str) -> set[str]:
    return {BY_NAME[n].alert_id for n in names}


def seed_database(conninfo: str) -> None:
    """Events and their alerts rows written as the evaluator writes them."""

    async def write_events() -> None:
        async with (
            await psycopg.AsyncConnection.connect(conninfo) as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            for seed in SEEDS:
                events = seed.events()
                await alert_store.insert_events(cur, events, NOW)
                await alert_store.upsert_alerts(cur, events)

    asyncio.run(write_events())
    with psycopg.connect(conninfo) as conn:
        for silence_id, enterprise, subject in SILENCES:
            conn.execute(
                "INSERT INTO alert_silences (silence_id, kind, rule, subject, enterprise, "
                "starts_at, ends_at, created_by) VALUES (%s, 'silence', '*', %s, %s, %s, %s, %s)",
                (
                    silence_id,
                    subject,
                    enterprise,
                    NOW - timedelta(hours=1),
                    NOW + timedelta(days=1),
                    "admin:ops",
                ),
            )


@dataclass
class Api:
    client: TestClient
    conninfo: str = field(repr=False)  # holds the database password
    registry: CollectorRegistry
    jishan_command: int

    def command_rows(self) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.conninfo) as conn:
            return conn.execute(
                "SELECT command_id, kind, payload, requested_by FROM alert_commands "
                "ORDER BY command_id"
            ).fetchall()


@pytest.fixture(scope="module")
def api(local_stack) -> Iterator[Api]:
    """One seeded database and app for the module (tests that write commands look only at
    the rows they wrote)."""
    with fresh_database(local_stack) as settings:
        conninfo = settings.database_url.get_secret_value()
        registry = CollectorRegistry()
        app = create_app(settings, REGISTER, ACCESS, conninfo, registry=registry, clock=lambda: NOW)
        with TestClient(app) as client:  # starting it applies the migrations
            seed_database(conninfo)
            answer = client.post(
                f"/alerts/{BY_NAME['jishan-budget'].alert_id}/acknowledge",
                json={"comment": "on it"},
                headers=bearer(JISHAN),
            )
            assert answer.status_code == 202, answer.text
            yield Api(client, conninfo, registry, answer.json()["command_id"])


def listed(api: Api, who: str, **params: Any) -> list[str]:
    answer = api.client.get("/alerts", params=params, headers=bearer(who))
    assert answer.status_code == 200, answer.text
    return [item["alert_id"] for item in answer.json()["items"]]


# --- who may call --------------------------------------------------------------------------


@services
def test_a_missing_or_unknown_token_is_refused_with_401_and_never_echoed(api, caplog):
    wrong_secret = f"{HEJIN}.not-the-secret"
    attempts = [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {wrong_secret}"},
        {"Authorization": "Bearer nobody.secret"},
        {"Authorization": "Bearer ops.wrong"},
        {"Authorization": f"Basic {_token('ops')}"},
    ]
    before = api.registry.get_sample_value("energywatch_alerts_api_auth_failures_total") or 0
    for headers in attempts:
        answer = api.client.get("/alerts", headers=headers)
        assert answer.status_code == 401, headers
        assert "Authorization: Bearer" in answer.json()["detail"]
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert "not-the-secret" not in answer.text
    after = api.registry.get_sample_value("energywatch_alerts_api_auth_failures_total")
    assert after - before == len(attempts)
    assert "secret" not in caplog.text


@services
def test_health_needs_no_token_and_checks_the_database(api):
    answer = api.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


# --- listing -------------------------------------------------------------------------------


@services
def test_an_operator_lists_every_live_alert_latest_first(api):
    got = listed(api, "ops")
    live = [s for s in SEEDS if not s.replay]
    assert set(got) == {s.alert_id for s in live}
    times = [BY_ID[i].last_event_at for i in got]
    assert times == sorted(times, reverse=True)


@services
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "resolved"}, ids("hejin-product", "jishan-voc")),
        (
            {"severity": "critical"},
            ids("hejin-voc", "jishan-voc", "taiyuan-budget"),
        ),
        (
            {"severity": "warning", "status": "firing"},
            ids("hejin-voc", "hejin-budget", "jishan-budget", "taiyuan-budget", "hejin-barometer"),
        ),
        ({"rule": "voc-"}, ids("hejin-voc", "jishan-voc")),
        (
            {"rule": "voc-", "include_replay": "true"},
            ids("hejin-voc", "jishan-voc", "hejin-replay"),
        ),
        ({"rule": "energy-budget.annual", "enterprise": JISHAN}, ids("jishan-budget")),
        (
            {"region": "140882"},
            ids("hejin-voc", "hejin-budget", "hejin-silent", "hejin-product", "hejin-barometer"),
        ),
        ({"region": "140100"}, ids("taiyuan-budget")),
        (
            {
                "since": (NOW - timedelta(minutes=60)).isoformat(),
                "until": (NOW - timedelta(minutes=10)).isoformat(),
            },
            ids("hejin-budget", "hejin-barometer"),
        ),
        ({"rule": "%"}, set()),  # a prefix, not a LIKE pattern
    ],
)
def test_filters_narrow_the_list(api, params, expected):
    assert set(listed(api, "ops", **params)) == expected


@services
@pytest.mark.parametrize("limit", [1, 2, 3, 500])
def test_pages_cover_every_alert_once_in_order(api, limit):
    whole = listed(api, "ops", include_replay="true")
    paged: list[str] = []
    cursor = None
    for _ in range(len(SEEDS) + 1):
        params: dict[str, Any] = {"limit": limit, "include_replay": "true"}
        if cursor:
            params["cursor"] = cursor
        page = api.client.get("/alerts", params=params, headers=bearer("ops")).json()
        assert len(page["items"]) <= limit
        paged += [item["alert_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == whole
    assert len(whole) == len(SEEDS)


@services
def test_a_cursor_the_api_did_not_hand_out_is_a_400(api):
    answer = api.client.get("/alerts", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=bearer("ops"))
    assert answer.status_code == 400
    assert "start again without it" in answer.json()["detail"]


@services
def test_history_lists_an_alerts_events_in_order(api):
    seed = BY_NAME["jishan-voc"]
    answer = api.client.get(f"/alerts/{seed.alert_id}/history", headers=bearer(JISHAN))
    assert answer.status_code == 200
    body = answer.json()
    assert [e["kind"] for e in body["items"]] == ["fired", "resolved"]
    assert [e["event_id"] for e in body["items"]] == [e.event_id for e in seed.events()]
    first = api.client.get(
        f"/alerts/{seed.alert_id}/history", params={"limit": 1}, headers=bearer(JISHAN)
    ).json()
    rest = api.client.get(
        f"/alerts/{seed.alert_id}/history",
        params={"limit": 1, "cursor": first["next_cursor"]},
        headers=bearer(JISHAN),
    ).json()
    assert [e["kind"] for e in first["items"] + rest["items"]] == ["fired", "resolved"]
    assert rest["next_cursor"] is None


# --- an enterprise sees only its own, through every route ----------------------------------

OWN, OTHER = HEJIN, JISHAN
#: For each path parameter: the other enterprise's object of that kind.
OTHERS_OBJECT = {
    "alert_id": lambda api: BY_NAME["jishan-budget"].alert_id,
    "silence_id": lambda api: "s-jishan",
    "command_id": lambda api: api.jishan_command,
}
#: For each list route: the field naming an item's enterprise, and what OWN must see.
LISTS = {
    "/alerts": (
        "enterprise_code",
        {"include_replay": "true"},
        {s.alert_id for s in SEEDS if s.enterprise == OWN},
        "alert_id",
    ),
    "/silences": ("enterprise", {"include_ended": "true"}, {"s-hejin"}, "silence_id"),
}
#: Routes without a path parameter that are not lists, each checked by its own test.
CHECKED_ELSEWHERE = {
    ("POST", "/silences"): "test_an_enterprise_may_silence_only_its_own_alerts",
    ("POST", "/emergencies"): "test_only_operators_declare_emergencies",
    ("GET", "/healthz"): "test_health_needs_no_token_and_checks_the_database",
}


def api_routes(app) -> list[tuple[str, str]]:
    return sorted(
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    )


@services
def test_an_enterprise_sees_only_its_own_through_every_route(api):
    routes = api_routes(api.client.app)
    assert len(routes) >= 10
    for method, path in routes:
        params = re.findall(r"{(\w+)}", path)
        if params:
            unknown = [p for p in params if p not in OTHERS_OBJECT]
            assert not unknown, f"{method} {path}: add {unknown} to OTHERS_OBJECT"
            url = path
            missing = path
            for p in params:
                url = url.replace(f"{{{p}}}", str(OTHERS_OBJECT[p](api)))
                missing = missing.replace(f"{{{p}}}", "9" * 18 if p == "command_id" else "f" * 32)
            answer = api.client.request(method, url, headers=bearer(OWN), json={})
            assert answer.status_code == 404, f"{method} {url}: {answer.status_code}"
            nonexistent = api.client.request(method, missing, headers=bearer(OWN), json={})
            assert nonexistent.status_code == 404, f"{method} {missing}"
            # the same answer as for something that does not exist, up to the id itself
            shape = answer.json()["detail"].split(" ")[:-1]
            assert shape == nonexistent.json()["detail"].split(" ")[:-1]
        elif method == "GET" and path in LISTS:
            owner_field, widest, expected, id_field = LISTS[path]
            answer = api.client.get(path, params=widest, headers=bearer(OWN))
            assert answer.status_code == 200
            items = answer.json()["items"]
            assert {item[owner_field] for item in items} == {OWN}, path
            assert {item[id_field] for item in items} == expected, path
        else:
            assert (method, path) in CHECKED_ELSEWHERE, (
                f"{method} {path} has no scope check: add it to this test"
            )


@services
def test_an_enterprise_cannot_name_another_enterprise_in_a_filter(api):
    assert listed(api, OWN, enterprise=OTHER) == []
    assert listed(api, OWN, region="140824") == []


# --- supervisors ---------------------------------------------------------------------------


@services
def test_a_city_supervisor_sees_both_of_its_counties_and_nothing_else(api):
    yuncheng = {s.alert_id for s in SEEDS if s.enterprise != TAIYUAN}
    assert set(listed(api, "yuncheng-city", include_replay="true")) == yuncheng
    assert listed(api, "xinzhou-city", include_replay="true") == []
    assert set(listed(api, "jishan-county")) == ids("jishan-budget", "jishan-voc", "jishan-quality")
    assert len(listed(api, "shanxi", include_replay="true")) == len(SEEDS)
    taiyuan = BY_NAME["taiyuan-budget"].alert_id
    for who in ("yuncheng-city", "xinzhou-city", "jishan-county"):
        assert api.client.get(f"/alerts/{taiyuan}", headers=bearer(who)).status_code == 404
    assert api.client.get(f"/alerts/{taiyuan}", headers=bearer("shanxi")).status_code == 200


@services
def test_supervisors_see_the_silences_of_their_region(api):
    def silences(who: str) -> set[str]:
        answer = api.client.get("/silences", headers=bearer(who))
        assert answer.status_code == 200
        return {item["silence_id"] for item in answer.json()["items"]}

    assert silences("yuncheng-city") == {"s-hejin", "s-jishan", "s-hejin-county"}
    assert silences("jishan-county") == {"s-jishan"}
    assert silences("xinzhou-city") == set()
    assert silences("ops") == {s[0] for s in SILENCES}


# --- commands ------------------------------------------------------------------------------


@services
def test_acknowledging_writes_one_command_naming_the_principal_not_the_token(api):
    seed = BY_NAME["hejin-budget"]
    before = api.command_rows()
    answer = api.client.post(
        f"/alerts/{seed.alert_id}/acknowledge",
        json={"comment": "retrofit under way", "expires_in_minutes": 30},
        headers=bearer(HEJIN),
    )
    assert answer.status_code == 202, answer.text
    command_id = answer.json()["command_id"]
    assert answer.headers["Location"] == f"/commands/{command_id}"
    new = api.command_rows()[len(before) :]
    assert len(new) == 1
    row_id, kind, payload, requested_by = new[0]
    assert (row_id, kind, requested_by) == (command_id, "acknowledge", f"enterprise:{HEJIN}")
    assert payload["user"] == f"enterprise:{HEJIN}"
    assert payload["alert_id"] == seed.alert_id
    assert datetime.fromisoformat(payload["expires_at"]) == NOW + timedelta(minutes=30)
    assert _token(HEJIN).split(".")[1] not in repr(new[0])

    status = api.client.get(f"/commands/{command_id}", headers=bearer(HEJIN))
    assert status.status_code == 200
    assert status.json()["state"] == "pending"
    assert api.client.get(f"/commands/{command_id}", headers=bearer("ops")).status_code == 200
    assert api.client.get(f"/commands/{command_id}", headers=bearer(JISHAN)).status_code == 404


@services
def test_a_supervisor_acknowledges_in_its_region_only(api):
    hejin = BY_NAME["hejin-voc"].alert_id
    assert (
        api.client.post(
            f"/alerts/{hejin}/acknowledge", json={}, headers=bearer("yuncheng-city")
        ).status_code
        == 202
    )
    before = len(api.command_rows())
    for who in ("jishan-county", "xinzhou-city"):
        answer = api.client.post(f"/alerts/{hejin}/acknowledge", json={}, headers=bearer(who))
        assert answer.status_code == 404
    assert len(api.command_rows()) == before


@services
def test_acknowledging_a_resolved_alert_is_a_409(api):
    seed = BY_NAME["jishan-voc"]
    answer = api.client.post(
        f"/alerts/{seed.alert_id}/acknowledge", json={}, headers=bearer(JISHAN)
    )
    assert answer.status_code == 409
    assert "resolved" in answer.json()["detail"]


@services
def test_command_status_follows_the_evaluator(api):
    command_id = api.jishan_command
    with psycopg.connect(api.conninfo) as conn:
        conn.execute(
            "UPDATE alert_commands SET applied_at = %s WHERE command_id = %s", (NOW, command_id)
        )
    assert api.client.get(f"/commands/{command_id}", headers=bearer(JISHAN)).json()["state"] == (
        "applied"
    )
    with psycopg.connect(api.conninfo) as conn:
        conn.execute(
            "UPDATE alert_commands SET error = 'no such alert' WHERE command_id = %s", (command_id,)
        )
    answer = api.client.get(f"/commands/{command_id}", headers=bearer(JISHAN)).json()
    assert (answer["state"], answer["error"]) == ("failed", "no such alert")


def silence(api: Api, who: str, **fields: Any):
    body = {"ends_at": (NOW + timedelta(hours=2)).isoformat(), **fields}
    return api.client.post("/silences", json=body, headers=bearer(who))


@services
def test_an_enterprise_may_silence_only_its_own_alerts(api):
    before = len(api.command_rows())
    refused = silence(api, HEJIN, enterprise=JISHAN)
    assert refused.status_code == 403
    assert f"set enterprise to {HEJIN}" in refused.json()["detail"]
    assert silence(api, HEJIN, enterprise="*").status_code == 403
    assert len(api.command_rows()) == before

    accepted = silence(api, HEJIN, rule="voc-*")
    assert accepted.status_code == 202, accepted.text
    kind, payload, requested_by = api.command_rows()[-1][1:]
    assert (kind, payload["enterprise"], payload["rule"]) == ("silence", HEJIN, "voc-*")
    assert payload["silence_id"] == accepted.json()["silence_id"]
    assert payload["created_by"] == requested_by == f"enterprise:{HEJIN}"
    # requested, not yet applied: its owner may already take it back; nobody else can
    silence_id = accepted.json()["silence_id"]
    assert api.client.delete(f"/silences/{silence_id}", headers=bearer(JISHAN)).status_code == 404
    removed = api.client.delete(f"/silences/{silence_id}", headers=bearer(HEJIN))
    assert removed.status_code == 202
    assert api.command_rows()[-1][2] == {"kind": "unsilence", "silence_id": silence_id}


@services
@pytest.mark.parametrize(
    ("fields", "stored_enterprise"),
    [
        ({"enterprise": JISHAN}, JISHAN),
        ({"subject": "140882"}, "*"),  # regional alerts of a county of the city
        ({"subject": "HJ-EL01"}, HEJIN),  # a registered meter: narrowed to its unit
        ({"subject": "HJVOC01", "silence_kind": "maintenance"}, HEJIN),
        ({"enterprise": TAIYUAN}, None),
        ({"subject": "140105"}, None),
        ({"subject": "TY-EL01"}, None),
        ({"subject": "HJ-*"}, None),
        ({}, None),  # everything: operators only
    ],
)
def test_a_supervisor_silences_only_inside_its_region(api, fields, stored_enterprise):
    answer = silence(api, "yuncheng-city", **fields)
    if stored_enterprise is None:
        assert answer.status_code == 403
        assert "yuncheng-city" in answer.json()["detail"]
    else:
        assert answer.status_code == 202, answer.text
        assert api.command_rows()[-1][2]["enterprise"] == stored_enterprise


@services
def test_a_silence_ends_in_the_future_a_maintenance_window_may_lie_in_the_past(api):
    yesterday = {
        "starts_at": (NOW - timedelta(days=1, hours=2)).isoformat(),
        "ends_at": (NOW - timedelta(days=1)).isoformat(),
    }
    past = silence(api, "ops", **yesterday)
    assert past.status_code == 422
    assert "future" in past.json()["detail"]
    assert silence(api, "ops", silence_kind="maintenance", **yesterday).status_code == 202
    backwards = silence(api, "ops", starts_at=(NOW + timedelta(hours=3)).isoformat())
    assert backwards.status_code == 422


@services
def test_only_operators_declare_emergencies(api):
    body = {"city": "yuncheng", "level": "orange", "lead_time_hours": 24}
    for who in (HEJIN, "yuncheng-city", "shanxi"):
        answer = api.client.post("/emergencies", json=body, headers=bearer(who))
        assert answer.status_code == 403
        assert "operators" in answer.json()["detail"]
    answer = api.client.post("/emergencies", json=body, headers=bearer("ops"))
    assert answer.status_code == 202
    kind, payload, requested_by = api.command_rows()[-1][1:]
    assert (kind, payload["city"], payload["level"], requested_by) == (
        "emergency",
        "yuncheng",
        "orange",
        "admin:ops",
    )
    lifted = api.client.post(
        "/emergencies", json={"city": "yuncheng", "level": None}, headers=bearer("ops")
    )
    assert lifted.status_code == 202
    assert api.command_rows()[-1][2]["level"] is None


# --- the document and the metrics ----------------------------------------------------------


@services
def test_the_openapi_document_lists_every_route_with_its_security(api):
    document = api.client.get("/openapi.json").json()
    try:  # checked by the validator where it is installed, by structure below always
        validator = importlib.import_module("openapi_spec_validator")
    except ImportError:
        pass
    else:
        validator.validate(document)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "EnergyWatch alerts"
    assert "Bearer" in document["info"]["description"]
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    documented = sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    )
    assert documented == api_routes(api.client.app)
    operation_ids = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            operation_ids.append(operation["operationId"])
            assert operation.get("description"), f"{method} {path} has no description"
            if path == "/healthz":
                assert "security" not in operation
            else:
                assert operation["security"] == [{"bearer": []}], f"{method} {path}"
                assert "401" in operation["responses"]
            if "{" in path:
                assert "404" in operation["responses"], f"{method} {path}"
    assert len(operation_ids) == len(set(operation_ids))
    refs = re.findall(
        r'"\$ref": ?"#/components/schemas/([^"]+)"', api.client.get("/openapi.json").text
    )
    assert refs
    assert set(refs) <= set(document["components"]["schemas"])


@services
def test_requests_are_counted_by_route_template_not_by_id(api):
    def count(route: str, status: str) -> float:
        labels = {"route": route, "method": "GET", "status": status}
        return api.registry.get_sample_value("energywatch_alerts_api_requests_total", labels) or 0

    before = count("/alerts/{alert_id}", "404"), count("/alerts/{alert_id}", "200")
    api.client.get(f"/alerts/{'e' * 32}", headers=bearer("ops"))
    api.client.get(f"/alerts/{BY_NAME['hejin-voc'].alert_id}", headers=bearer("ops"))
    after = count("/alerts/{alert_id}", "404"), count("/alerts/{alert_id}", "200")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    samples = [s for m in api.registry.collect() for s in m.samples if "alert_id" in str(s.labels)]
    assert all("e" * 32 not in str(s.labels) for s in samples)


# --- pure parts: cursors, regions, tokens, silence policy ----------------------------------

hex_ids = st.text("0123456789abcdef", min_size=16, max_size=64)
instants = st.datetimes(timezones=st.just(UTC))


@given(instants, hex_ids)
def test_a_cursor_decodes_to_the_position_it_was_made_from(at, id_):
    assert decode_cursor(encode_cursor(Position(at, id_))) == Position(at, id_)


@given(st.text(max_size=200))
def test_any_other_text_is_refused_as_a_cursor_or_is_that_cursor(text):
    try:
        position = decode_cursor(text)
    except CursorError:
        return
    assert encode_cursor(position) == text


@given(st.binary(max_size=100))
def test_base64_of_anything_else_is_refused_as_a_cursor(raw):
    import base64

    text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    try:
        position = decode_cursor(text)
    except CursorError:
        return
    assert encode_cursor(position) == text


division_codes = st.from_regex(r"\A[1-6][0-9]{5}\Z")


@given(division_codes, division_codes)
def test_a_region_prefix_covers_exactly_the_counties_routing_says(region, county):
    assert county.startswith(region_prefix(region)) == region_covers(region, county)


def test_a_scope_is_exactly_one_of_everything_a_unit_or_a_region():
    with pytest.raises(ValueError, match="pick one"):
        Scope()
    with pytest.raises(ValueError, match="pick one"):
        Scope(everything=True, enterprise_code=HEJIN)
    with pytest.raises(ValueError, match="prefix"):
        Scope(region_prefix="14%")


AUTH = Authenticator(REGISTER, ACCESS)


def test_tokens_name_their_principal():
    assert AUTH.principal_for(_token(HEJIN)) == Principal(PrincipalKind.ENTERPRISE, HEJIN)
    assert AUTH.principal_for(_token("yuncheng-city")) == Principal(
        PrincipalKind.SUPERVISOR, "yuncheng-city", "140800"
    )
    assert AUTH.principal_for(_token("ops")).name == "admin:ops"
    for wrong in ("", ".", "ops", "ops.", f"{HEJIN}.x", _token("ops") + "x", _token("nobody")):
        assert AUTH.principal_for(wrong) is None, wrong


def test_enterprise_silences_are_pinned_to_its_own_code():
    hejin = Principal(PrincipalKind.ENTERPRISE, HEJIN)
    assert AUTH.silence_enterprise(hejin, None, "*") == HEJIN
    assert AUTH.silence_enterprise(hejin, HEJIN, "*") == HEJIN
    for other in (JISHAN, "*", "9114*"):
        with pytest.raises(SilenceRefused, match="only its own"):
            AUTH.silence_enterprise(hejin, other, "*")
    admin = Principal(PrincipalKind.ADMIN, "ops")
    assert AUTH.silence_enterprise(admin, None, "*") == "*"


def test_the_example_access_file_loads():
    access = load_access(EXAMPLE)
    assert {p.kind for p in access.principals} == {"supervisor", "admin"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "principals:\n  - {kind: supervisor, name: a, region_code: '000000', "
            "token_salt: 0123456789abcdef, token_sha256: '" + "0" * 64 + "'}",
            "not a province",
        ),
        (
            "principals:\n  - {kind: admin, name: Ops, token_salt: 0123456789abcdef, "
            "token_sha256: '" + "0" * 64 + "'}",
            "principals.0.admin.name",
        ),
        (
            "principals:\n  - {kind: admin, name: ops, token_salt: 0123456789abcdef, "
            "token_sha256: ops.the-token-itself}",
            "token_sha256",
        ),
    ],
)
def test_a_bad_access_file_is_reported_by_place_without_values(text, problem):
    with pytest.raises(ConfigFileError, match=problem) as raised:
        parse_access(text, "access.yaml")
    assert "the-token-itself" not in str(raised.value)


def test_token_digest_makes_an_entry_its_token_authenticates_against(tmp_path):
    app = typer.Typer()
    app.command("token-digest")(token_digest)
    app.command("unused")(lambda: None)  # keeps token-digest a subcommand
    path = tmp_path / "access.yaml"
    result = CliRunner().invoke(
        app, ["token-digest", "ops-b", "--kind", "admin", "--out", str(path)]
    )
    assert result.exit_code == 0, result.output
    token = re.search(r"(ops-b\.[A-Za-z0-9_-]{40,})", result.output)[1]
    assert token not in path.read_text()
    authenticator = Authenticator(REGISTER, load_access(path))
    assert authenticator.principal_for(token) == Principal(PrincipalKind.ADMIN, "ops-b")
    again = CliRunner().invoke(
        app, ["token-digest", "ops-b", "--kind", "admin", "--out", str(path)]
    )
    assert again.exit_code == 2
    assert "appear more than once" in again.output
    assert len(load_access(path).principals) == 1
