"""Security checks (issue 8, part 4), each a function returning ``Finding``s:

1. ``check_api_access``: every route of the Alerts API, enumerated from its OpenAPI document
   (a new route is covered, or flagged, automatically), called with an enterprise's token for
   another enterprise's alerts, silences, commands and filters, and with a supervisor's token
   for another region's: 403 or 404, and none of the other's ids or codes in the answer.
2. ``check_sql_parameters``: a static check that every ``execute``/``executemany``/``copy``
   call in ``storage/ alerts/ stream/ ingest/ benchmarks/`` gets SQL that is a constant or
   composed with ``psycopg.sql``: no f-string, ``%`` or ``.format`` with a non-constant part,
   except the allow-listed identifier cases (``SQL_ALLOWED``), each with its reason.
3. ``check_secrets_in_logs``: ``energywatch run`` (the main job) with known secret values in
   its environment; none of them (nor the stack's database and broker passwords, nor the
   webhook secrets the job made) in its output or in anything it appended to ``.local/logs``.
4. ``check_webhook_signatures``: the webhook receiver refuses a tampered body, a wrong secret,
   a missing signature and a replayed (stale) timestamp, and takes a right one.
5. ``check_bind_addresses``: every ``*_host`` setting defaults to 127.0.0.1, and each service
   started with its defaults listens on loopback only (its sockets, from ``/proc``), as do the
   local stack's services.
"""

import ast
import asyncio
import hashlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
from pydantic import SecretStr

from energywatch.settings import REPO_ROOT, Settings

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str
    ok: bool
    detail: str = ""


# --- 1. the Alerts API: no data across enterprises or regions -----------------------------

#: Two units in two counties of two cities, each with a supervisor of its own region.
OWN_CODE: Final = "9114088212JX9EJR64"  # county 140882 (河津), city 140800
OTHER_CODE: Final = "91140100MA0K0000XX"  # county 140105, city 140100
_NOW: Final = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
#: Routes that need no token, and why.
PUBLIC_ROUTES: Final = {("GET", "/healthz"): "liveness for load balancers; says only ok or not"}
#: A body for each route that takes one, naming the *other* party's things where it can.
ROUTE_BODIES: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("POST", "/alerts/{alert_id}/acknowledge"): {"comment": "not mine"},
    ("POST", "/silences"): {
        "enterprise": OTHER_CODE,
        "ends_at": (_NOW + timedelta(days=30)).isoformat(),
    },
    ("POST", "/emergencies"): {"city": "taiyuan", "level": "red"},
}
#: For list routes: query parameters naming the other party (and widening the list).
LIST_FILTERS: Final[dict[tuple[str, str], list[dict[str, str]]]] = {
    ("GET", "/alerts"): [
        {"enterprise": OTHER_CODE, "include_replay": "true"},
        {"region": "140100", "include_replay": "true"},
        {"region": "140000", "include_replay": "true"},
        {"include_replay": "true", "limit": "500"},
    ],
    ("GET", "/silences"): [{"include_ended": "true"}],
}


def _token(name: str, salt: str) -> str:
    return f"{name}.{hashlib.sha256((salt + name).encode()).hexdigest()[:32]}"


@dataclass(frozen=True)
class _Party:
    """One side: its token, and what of it the other side must never see."""

    name: str
    token: str
    secrets_: tuple[str, ...]  # its alert ids, silence id, code: never in the other's answers


def _seed_world(conninfo: str, salt: str) -> dict[str, Any]:
    """Register, access file and stored alerts/silences/commands for both parties."""
    from alerts.access import AccessConfig, SupervisorAccess
    from contracts.alert_events import AlertEvent, AlertKind, AlertSeverity
    from plans.register import EnterpriseEntry, Register, salted_digest
    from storage import alert_store

    def unit(code: str, county: str, city: str) -> EnterpriseEntry:
        return EnterpriseEntry(
            code=code,
            name=f"unit {code}",
            city=city,
            county=county,
            industry="steel",
            token_salt=salt,
            token_sha256=salted_digest(salt, _token(code, salt)),
        )

    def supervisor(name: str, region: str) -> SupervisorAccess:
        return SupervisorAccess(
            name=name,
            region_code=region,
            token_salt=salt,
            token_sha256=salted_digest(salt, _token(name, salt)),
        )

    register = Register(
        name="prove-security",
        enterprises=(unit(OWN_CODE, "140882", "yuncheng"), unit(OTHER_CODE, "140105", "taiyuan")),
    )
    access = AccessConfig(
        principals=(supervisor("yuncheng-city", "140800"), supervisor("taiyuan-city", "140100"))
    )
    alert_ids: dict[str, list[str]] = {OWN_CODE: [], OTHER_CODE: []}
    events = []
    for code, county in ((OWN_CODE, "140882"), (OTHER_CODE, "140105")):
        for n, rule in enumerate(("energy-budget.annual", "voc-hourly.a24088", "device-silence")):
            alert_id = hashlib.sha256(f"{code}/{rule}".encode()).hexdigest()[:32]
            alert_ids[code].append(alert_id)
            events.append(
                AlertEvent(
                    event_id=hashlib.sha256(f"{alert_id}/0".encode()).hexdigest()[:32],
                    alert_id=alert_id,
                    kind=AlertKind.FIRED,
                    rule_id=rule,
                    subject=code,
                    enterprise_code=code,
                    region_code=county if n != 2 else None,
                    severity=AlertSeverity.WARNING,
                    message=f"{rule} on {code}",
                    started_at=_NOW - timedelta(hours=2),
                    at=_NOW - timedelta(hours=1, minutes=n),
                    emitted_at=_NOW - timedelta(hours=1, minutes=n),
                    replay=n == 1,
                )
            )

    async def write() -> None:
        import psycopg

        async with (
            await psycopg.AsyncConnection.connect(conninfo) as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            await alert_store.insert_events(cur, events, _NOW)
            await alert_store.upsert_alerts(cur, events)
            for code in (OWN_CODE, OTHER_CODE):
                await cur.execute(
                    "INSERT INTO alert_silences (silence_id, kind, rule, subject, enterprise, "
                    "starts_at, ends_at, created_by) VALUES (%s, 'silence', '*', '*', %s, %s, "
                    "%s, %s)",
                    (f"s-{code}", code, _NOW - timedelta(hours=1), _NOW + timedelta(days=1), "x"),
                )

    asyncio.run(write())
    return {"register": register, "access": access, "alert_ids": alert_ids}


def _leaks(text: str, other: _Party, echoed: tuple[str, ...] = ()) -> list[str]:
    """The other party's ids and codes in ``text``, beyond what the caller sent itself (an
    answer may say "no alert <the id you asked for>")."""
    for own_input in echoed:
        text = text.replace(own_input, "")
    return [s for s in other.secrets_ if s in text]


def check_api_access(settings: Settings) -> list[Finding]:
    """Every route, an enterprise against the other enterprise and a supervisor against the
    other region (with a fresh database of its own)."""
    from fastapi.testclient import TestClient
    from prometheus_client import CollectorRegistry

    from alerts.access import AccessConfig
    from alerts.api import create_app
    from plans.register import Register
    from storage.scratch_databases import scratch_database

    salt = secrets.token_hex(8)
    findings: list[Finding] = []
    with scratch_database(settings.database_url.get_secret_value(), "ew_prove") as conninfo:
        local = settings.model_copy(update={"database_url": SecretStr(conninfo)})
        # starting the app applies the migrations; the world is seeded after that
        empty = create_app(
            local,
            Register(name="empty", enterprises=()),
            AccessConfig(),
            conninfo,
            registry=CollectorRegistry(),
        )
        with TestClient(empty):
            world = _seed_world(conninfo, salt)
        app = create_app(
            local,
            world["register"],
            world["access"],
            conninfo,
            registry=CollectorRegistry(),
            clock=lambda: _NOW,
        )
        ids = world["alert_ids"]
        with TestClient(app) as client:
            other_command = client.post(
                f"/alerts/{ids[OTHER_CODE][0]}/acknowledge",
                json={},
                headers={"Authorization": f"Bearer {_token(OTHER_CODE, salt)}"},
            ).json()["command_id"]
            other_objects = {
                "alert_id": ids[OTHER_CODE][0],
                "silence_id": f"s-{OTHER_CODE}",
                "command_id": str(other_command),
            }
            other_secrets = (OTHER_CODE, f"s-{OTHER_CODE}", *ids[OTHER_CODE])
            pairs = [
                (
                    _Party(f"enterprise {OWN_CODE}", _token(OWN_CODE, salt), ()),
                    _Party(f"enterprise {OTHER_CODE}", "", other_secrets),
                ),
                (
                    _Party("supervisor of 140800", _token("yuncheng-city", salt), ()),
                    _Party("region 140100", "", other_secrets),
                ),
            ]
            for method, path in _routes(app.openapi()):
                for caller, other in pairs:
                    findings.append(
                        _check_route(client, method, path, caller, other, other_objects)
                    )
    return findings


def _routes(openapi: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for path, operations in sorted(openapi["paths"].items()):
        for method in sorted(operations):
            yield method.upper(), path


def _check_route(
    client: Any,
    method: str,
    path: str,
    caller: _Party,
    other: _Party,
    objects: dict[str, str],
) -> Finding:
    subject = f"{method} {path} as {caller.name} for {other.name}"
    check = "api access"
    if (method, path) in PUBLIC_ROUTES:
        answer = client.request(method, path)
        leaked = _leaks(answer.text, other)
        return Finding(check, subject, not leaked, f"public: {PUBLIC_ROUTES[(method, path)]}")
    headers = {"Authorization": f"Bearer {caller.token}"}
    params = re.findall(r"{(\w+)}", path)
    unknown = [p for p in params if p not in objects]
    if unknown:
        return Finding(check, subject, False, f"no object for {unknown}: add it to the check")
    url = path
    for p in params:
        url = url.replace(f"{{{p}}}", objects[p])
    body = ROUTE_BODIES.get((method, path), {}) if method in ("POST", "PUT", "PATCH") else None
    if params or method != "GET":
        answer = client.request(method, url, headers=headers, json=body)
        sent = tuple(objects[p] for p in params) + tuple(str(v) for v in (body or {}).values())
        leaked = _leaks(answer.text, other, sent)
        ok = answer.status_code in (403, 404) and not leaked
        detail = f"{answer.status_code}" + (f"; leaked {leaked}" if leaked else "")
        if answer.status_code == 422:
            detail += ": the check's request is invalid; give this route a body in ROUTE_BODIES"
        return Finding(check, subject, ok, detail)
    filters = LIST_FILTERS.get((method, path))
    if filters is None:
        return Finding(check, subject, False, "a list route without filters in LIST_FILTERS")
    problems = []
    for query in filters:
        answer = client.get(url, params=query, headers=headers)
        leaked = _leaks(answer.text, other, tuple(query.values()))
        if answer.status_code not in (200, 403, 404) or leaked:
            problems.append(f"{query}: {answer.status_code}, leaked {leaked}")
    return Finding(check, subject, not problems, "; ".join(problems) or f"{len(filters)} filters")


# --- 2. SQL built only with parameters ------------------------------------------------------

SQL_FOLDERS: Final = ("storage", "alerts", "stream", "ingest", "benchmarks")
_SQL_CALLS: Final = frozenset({"execute", "executemany", "copy"})
_PSYCOPG_SQL: Final = frozenset({"SQL", "Composed", "Identifier", "Literal", "Placeholder"})
#: (file, function) -> why an SQL string with non-constant parts is safe there.
SQL_ALLOWED: Final[dict[tuple[str, str], str]] = {
    ("storage/scratch_databases.py", "scratch_database"): (
        "CREATE DATABASE takes no parameters; the name is the caller's prefix and uuid hex, "
        "quoted (sql.Identifier would be the better quoting)"
    ),
    ("storage/scratch_databases.py", "recreate_database"): (
        "CREATE DATABASE takes no parameters; the name is the demo's constant, quoted"
    ),
    ("storage/scratch_databases.py", "drop_database"): (
        "DROP DATABASE takes no parameters; names made by the two functions above, quoted"
    ),
    ("storage/alert_store.py", "listen"): (
        "LISTEN takes no parameters; the channels are the evaluator's own constants"
    ),
    ("storage/reference_data.py", "replace_reference_data"): (
        "TRUNCATE and COPY name tables and columns from the module's fixed COLUMNS map"
    ),
    ("storage/rollup_queries.py", "meters_by_energy_type"): (
        "the column comes from a fixed two-entry map; the values are parameters"
    ),
    ("benchmarks/dashboards.py", "table_stats"): (
        "count(*) of each table name read from the catalogue, quoted (benchmark only)"
    ),
    ("benchmarks/dashboards.py", "time_queries"): (
        "SET statement_timeout takes no parameters; the value is an int() the code computes"
    ),
}


@dataclass(frozen=True)
class SqlCall:
    path: str
    line: int
    function: str
    verdict: str  # "constant", "composed" (psycopg.sql), "parameterless" or "built"


def _is_constant(node: ast.expr, constants: set[str]) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id.isupper() or node.id in constants
    if isinstance(node, ast.JoinedStr):
        return all(
            _is_constant(v.value, constants) if isinstance(v, ast.FormattedValue) else True
            for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_constant(node.left, constants) and _is_constant(node.right, constants)
    return False


def _composed(node: ast.expr) -> bool:
    """``sql.SQL(...)`` / ``sql.Composed`` / ``.format`` on one / ``sql.Identifier``...: SQL
    composed with psycopg, which quotes identifiers and literals itself."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Attribute) and inner.attr in _PSYCOPG_SQL:
            return True
    return False


def _judge_sql(node: ast.expr, assigned: dict[str, ast.expr], constants: set[str]) -> str:
    if isinstance(node, ast.Name) and node.id in assigned:
        node = assigned[node.id]
    if _composed(node):
        return "composed"
    if _is_constant(node, constants):
        return "constant"
    if isinstance(node, ast.JoinedStr | ast.BinOp) or (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("format", "join", "replace")
    ):
        return "built"
    return "parameterless"  # a name or call we cannot see into: reported, not failed


def sql_calls(root: Path = REPO_ROOT, folders: tuple[str, ...] = SQL_FOLDERS) -> list[SqlCall]:
    """Every ``execute``/``executemany``/``copy`` call in ``folders`` and how its SQL is made."""
    calls: list[SqlCall] = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            constants = {
                t.id
                for node in tree.body
                if isinstance(node, ast.Assign)
                for t in node.targets
                if isinstance(t, ast.Name) and _is_constant(node.value, set())
            }
            for function in ast.walk(tree):
                if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                assigned = {
                    t.id: node.value
                    for node in ast.walk(function)
                    if isinstance(node, ast.Assign)
                    for t in node.targets
                    if isinstance(t, ast.Name)
                }
                for node in ast.walk(function):
                    if (
                        isinstance(node, ast.Call)
                        and isinstance(node.func, ast.Attribute)
                        and node.func.attr in _SQL_CALLS
                        and node.args
                    ):
                        calls.append(
                            SqlCall(
                                str(path.relative_to(root)),
                                node.lineno,
                                function.name,
                                _judge_sql(node.args[0], assigned, constants),
                            )
                        )
    # a call inside a nested function is seen from both: keep one
    return sorted(set(calls), key=lambda c: (c.path, c.line))


def check_sql_parameters(root: Path = REPO_ROOT) -> list[Finding]:
    findings = []
    calls = sql_calls(root)
    for call in calls:
        if call.verdict != "built":
            continue
        reason = SQL_ALLOWED.get((call.path, call.function))
        findings.append(
            Finding(
                "sql parameters",
                f"{call.path}:{call.line} in {call.function}",
                reason is not None,
                reason or "SQL built from non-constant parts: use parameters, or psycopg.sql",
            )
        )
    counts = {v: sum(1 for c in calls if c.verdict == v) for v in ("constant", "composed")}
    findings.append(
        Finding(
            "sql parameters",
            f"{len(calls)} execute/executemany/copy calls",
            True,
            f"{counts['constant']} constant SQL, {counts['composed']} composed with psycopg.sql",
        )
    )
    return findings


# --- 3. secrets never in logs ---------------------------------------------------------------


def _known_secrets(settings: Settings, canaries: dict[str, str]) -> dict[str, str]:
    from urllib.parse import quote, urlsplit

    found = dict(canaries)
    password = urlsplit(settings.database_url.get_secret_value()).password
    if password:
        found["database password"] = password
        found["database password (URL-encoded)"] = quote(password, safe="")
    if settings.mqtt_password is not None:
        found["MQTT gateway password"] = settings.mqtt_password.get_secret_value()
    return {name: value for name, value in found.items() if len(value) >= 8}


def check_secrets_in_logs(
    settings: Settings, logs: Path, scenario: Path | None = None, timeout: float = 900
) -> list[Finding]:
    """Run the main job with canary secrets; scan its output and what it added to ``logs``."""
    canaries = {
        "EW_WEBHOOK_SECRET": "whsec-" + secrets.token_hex(12),
        "EW_SMTP_PASSWORD": "smtp-" + secrets.token_hex(12),
        "EW_SMTP_USERNAME": "smtp-user-" + secrets.token_hex(6),
    }
    env = {**os.environ, **settings.as_env(), **canaries}
    env.pop("EW_RECIPIENTS_PATH", None)
    sizes = {p: p.stat().st_size for p in logs.glob("*.log")}
    command = [sys.executable, "-m", "energywatch.cli", "run"]
    if scenario is not None:
        command += ["--scenario", str(scenario)]
    started = time.monotonic()
    done = subprocess.run(
        command, env=env, capture_output=True, timeout=timeout, cwd=REPO_ROOT, check=False
    )
    seconds = time.monotonic() - started
    known = _known_secrets(settings, {f"{k} (canary)": v for k, v in canaries.items()})
    recipients = logs.parent / "demo" / "recipients.yaml"
    if recipients.exists():
        for n, secret in enumerate(
            re.findall(r"secret: ['\"]?([0-9a-f]{32})", recipients.read_text())
        ):
            known[f"webhook secret {n} of the demo"] = secret
    texts = {"energywatch run: stdout": done.stdout, "energywatch run: stderr": done.stderr}
    for path in sorted(logs.glob("*.log")):
        with path.open("rb") as log:
            log.seek(sizes.get(path, 0))
            texts[f"{path.name} (appended)"] = log.read()
    findings = [
        Finding(
            "secrets in logs",
            f"energywatch run ({seconds:.0f}s, exit {done.returncode})",
            done.returncode in (0, 1),
            f"{len(known)} secrets looked for in {len(texts)} outputs, "
            f"{sum(len(t) for t in texts.values()):,} bytes",
        )
    ]
    return findings + scan_for_secrets(texts, known)


def scan_for_secrets(texts: dict[str, bytes], known: dict[str, str]) -> list[Finding]:
    """One finding per output: which of the ``known`` secrets (name -> value) it holds."""
    findings = []
    for where, text in texts.items():
        found = [name for name, value in known.items() if value.encode() in text]
        findings.append(Finding("secrets in logs", where, not found, ", ".join(found)))
    return findings


# --- 4. webhook signatures ------------------------------------------------------------------

#: How old a signed timestamp a receiver should still accept (Stripe's default tolerance).
WEBHOOK_TOLERANCE_SECONDS: Final = 300


def check_webhook_signatures() -> list[Finding]:
    """The receiver EnergyWatch ships (``alerts/webhook_receiver.py``) against requests made
    the notifier's way (``build_webhook_request``), then tampered with."""
    from alerts.channels.render import RenderedMessage
    from alerts.channels.targets import WebhookTarget
    from alerts.channels.webhook import (
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        build_webhook_request,
        sign,
    )
    from alerts.webhook_receiver import WebhookReceiver
    from contracts.alert_events import AlertEvent, AlertKind, AlertSeverity

    secret = secrets.token_hex(16)
    event = AlertEvent(
        event_id=uuid.uuid4().hex,
        alert_id=uuid.uuid4().hex,
        kind=AlertKind.FIRED,
        rule_id="energy-budget.annual",
        subject=OWN_CODE,
        enterprise_code=OWN_CODE,
        region_code="140882",
        severity=AlertSeverity.WARNING,
        message="over budget",
        started_at=datetime.now(UTC),
        at=datetime.now(UTC),
        emitted_at=datetime.now(UTC),
    )
    message = RenderedMessage(title="t", text="x", markdown="x", html="x", events=(event,))
    target = WebhookTarget(url="http://127.0.0.1/", secret=SecretStr(secret))

    def request(key: str, age: float = 0) -> tuple[bytes, dict[str, str]]:
        stamp = str(int(time.time() - age))
        made = build_webhook_request(target, message, key, stamp)
        return made.body, dict(made.headers)

    cases: list[tuple[str, bytes, dict[str, str], bool]] = []
    body, headers = request(event.event_id)
    cases.append(("a rightly signed request", body, headers, True))
    body, headers = request(event.event_id)
    cases.append(("a tampered body", body.replace(b"over budget", b"all clear!!"), headers, False))
    body, headers = request(event.event_id)
    wrong = sign(b"not-the-secret", headers[TIMESTAMP_HEADER], body)
    cases.append(("a wrong secret", body, {**headers, SIGNATURE_HEADER: wrong}, False))
    body, headers = request(event.event_id)
    del headers[SIGNATURE_HEADER]
    cases.append(("no signature", body, headers, False))
    body, headers = request(event.event_id, age=WEBHOOK_TOLERANCE_SECONDS * 4)
    cases.append(
        ("a replayed request (a correct signature, a stale timestamp)", body, headers, False)
    )
    findings = []
    with WebhookReceiver(secret.encode()) as receiver:
        for name, body, headers, wanted in cases:
            status = httpx.post(receiver.url, content=body, headers=headers).status_code
            accepted = status < 300
            findings.append(
                Finding(
                    "webhook signatures",
                    name,
                    accepted == wanted,
                    f"{status}, {'accepted' if accepted else 'refused'} "
                    f"(should be {'accepted' if wanted else 'refused'})",
                )
            )
    return findings


# --- 5. services bind to 127.0.0.1 ----------------------------------------------------------


def _listening(pids: set[int]) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket of the processes ``pids`` (``/proc``)."""
    inodes: set[str] = set()
    for pid in pids:
        with_fds = Path(f"/proc/{pid}/fd")
        try:
            for fd in with_fds.iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return [(a, p) for a, p, inode in _listening_sockets() if inode in inodes]


def _listening_sockets() -> list[tuple[str, int, str]]:
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            address, port = fields[1].split(":")
            found.append((_address(address, width), int(port, 16), fields[9]))
    return found


def _address(hex_address: str, width: int) -> str:
    import ipaddress

    raw = bytes.fromhex(hex_address)
    if width == 8:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words))


def _loopback(address: str) -> bool:
    import ipaddress

    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _tree(pid: int) -> set[int]:
    pids = {pid}
    for task in Path("/proc").iterdir():
        if task.name.isdigit():
            with_stat = task / "stat"
            try:
                parent = int(with_stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent in pids:
                pids.add(int(task.name))
    return pids


#: ``*_host`` settings that name a server EnergyWatch connects to, not an address it binds.
CLIENT_HOSTS: Final = {"smtp_host": "the mail server the notifier sends through"}


def check_bind_addresses(settings: Settings, logs: Path, progress: Progress) -> list[Finding]:
    from benchmarks.ingest import free_port
    from energywatch.service_process import ServiceProcess
    from proving_ground.fuzz import World

    findings = []
    for name, info in Settings.model_fields.items():
        if name.endswith("_host") and name not in CLIENT_HOSTS:
            findings.append(
                Finding(
                    "bind address",
                    f"setting {name} default",
                    info.default == "127.0.0.1",
                    str(info.default),
                )
            )
    # each service with every *_host left at its default (no EW_*_HOST in its environment)
    env = {k: v for k, v in settings.as_env().items() if not k.endswith("_HOST")}
    env.pop("EW_PROMETHEUS_TARGETS_DIR", None)
    for key in ("HJ212_PORT", "HTTP_PORT", "ALERTS_API_PORT"):
        env[f"EW_{key}"] = str(free_port())
    for key in ("INGEST", "WORKER", "NOTIFIER", "EVALUATOR", "ALERTS_API"):
        env[f"EW_{key}_METRICS_PORT"] = str(free_port())
    run = uuid.uuid4().hex[:8]
    env |= {
        "EW_READINGS_TOPIC": f"ew-prove-{run}.readings",
        "EW_ALERTS_TOPIC": f"ew-prove-{run}.alerts",
        "EW_DEAD_LETTER_TOPIC": f"ew-prove-{run}.dead-letters",
        "EW_PRODUCTION_TOPIC": f"ew-prove-{run}.production",
        "EW_VOC_TOPIC": f"ew-prove-{run}.voc",
        "EW_WORKER_APP_ID": f"ew-prove-{run}-worker",
        "EW_NOTIFIER_GROUP_ID": f"ew-prove-{run}-notifier",
        "EW_MQTT_TOPIC_PREFIX": f"ew-prove-{run}",
        "EW_WEBHOOK_URL": "http://127.0.0.1:9/none",
    }
    with tempfile.TemporaryDirectory(prefix="ew-prove-") as directory:
        register = str(World.build(packets=5).write(Path(directory)))
        env["EW_REGISTER_PATH"] = register
        services = {
            "ingest hj212": ["ingest", "hj212", "--register", register],
            "ingest http": ["ingest", "http", "--register", register],
            "ingest mqtt": ["ingest", "mqtt", "--register", register],
            "alerts api": ["alerts", "api"],
            "worker": ["worker"],
            "notify": ["notify"],
            "alerts evaluate": ["alerts", "evaluate"],
        }
        expected_sockets = {"ingest hj212": 2, "ingest http": 2, "alerts api": 2}
        for name, command in services.items():
            progress(f"bind addresses: starting {name}")
            process = ServiceProcess(command, env, logs / f"prove-bind-{command[-1]}.log")
            process.start()
            try:
                wanted = expected_sockets.get(name, 1)
                deadline = time.monotonic() + 60
                sockets: list[tuple[str, int]] = []
                while time.monotonic() < deadline and process.alive():
                    sockets = _listening(_tree(process.pid))
                    if len(sockets) >= wanted:
                        time.sleep(1)  # anything else it opens comes now
                        sockets = _listening(_tree(process.pid))
                        break
                    time.sleep(0.5)
                outside = [f"{a}:{p}" for a, p in sockets if not _loopback(a)]
                shown = ", ".join(f"{a}:{p}" for a, p in sorted(set(sockets)))
                findings.append(
                    Finding(
                        "bind address",
                        f"energywatch {name}",
                        bool(sockets) and not outside,
                        shown or f"no listening socket (log: {process.log_tail(5)})",
                    )
                )
            finally:
                process.stop()
    from stack import StackSettings

    stack = StackSettings()
    stack_ports = {
        "kafka": stack.kafka_port,
        "kafka controller": stack.kafka_controller_port,
        "postgres": stack.postgres_port,
        "prometheus": stack.prometheus_port,
        "mosquitto": stack.mqtt_port,
    }
    listening = _listening_sockets()
    for service, port in stack_ports.items():
        on = sorted({a for a, p, _ in listening if p == port})
        findings.append(
            Finding(
                "bind address",
                f"stack: {service} (port {port})",
                bool(on) and all(_loopback(a) for a in on),
                ", ".join(on) or "not listening (is the stack up?)",
            )
        )
    return findings


# --- the suite ----------------------------------------------------------------------------

CHECKS: Final = ("api", "sql", "logs", "webhook", "bind")


def run_security(
    settings: Settings,
    logs: Path,
    progress: Progress = lambda message: None,
    checks: tuple[str, ...] = CHECKS,
    scenario: Path | None = None,
) -> list[Finding]:
    findings: list[Finding] = []
    if "api" in checks:
        progress("Alerts API: every route across enterprises and regions")
        findings += check_api_access(settings)
    if "sql" in checks:
        progress("SQL: every execute, executemany and copy")
        findings += check_sql_parameters()
    if "webhook" in checks:
        progress("webhook signatures")
        findings += check_webhook_signatures()
    if "bind" in checks:
        findings += check_bind_addresses(settings, logs, progress)
    if "logs" in checks:
        progress("energywatch run with canary secrets (about a minute)")
        findings += check_secrets_in_logs(settings, logs, scenario)
    return findings
