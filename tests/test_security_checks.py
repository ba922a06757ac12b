"""Security (issue 8, part 4): the checks ``energywatch prove security`` runs, each against
the real services, and each scanner shown to catch what it looks for."""

import pytest

from proving_ground.security import (
    SQL_ALLOWED,
    Finding,
    _leaks,
    _loopback,
    _Party,
    check_api_access,
    check_bind_addresses,
    check_secrets_in_logs,
    check_sql_parameters,
    check_webhook_signatures,
    scan_for_secrets,
    sql_calls,
)

services = pytest.mark.services


def failures(findings: list[Finding]) -> list[str]:
    return [f"{f.subject}: {f.detail}" for f in findings if not f.ok]


@services
def test_no_route_of_the_alerts_api_shows_another_enterprise_or_region_anything(local_stack):
    findings = check_api_access(local_stack)
    assert not failures(findings)
    routes = {f.subject.split(" as ")[0] for f in findings}
    assert len(routes) >= 10  # every route, from the OpenAPI document
    assert all(" as enterprise " in f.subject or " as supervisor " in f.subject for f in findings)


def test_an_answer_leaks_what_the_caller_did_not_send_itself():
    other = _Party("other", "", ("91140100MA0K0000XX", "abc123"))
    assert _leaks('{"detail": "no alert abc123"}', other, ("abc123",)) == []
    assert _leaks('{"items": [{"enterprise_code": "91140100MA0K0000XX"}]}', other) == [
        "91140100MA0K0000XX"
    ]


def test_every_sql_execution_uses_parameters_or_an_allow_listed_identifier():
    assert not failures(check_sql_parameters())


def test_the_allow_list_names_only_calls_that_still_build_sql():
    built = {(c.path, c.function) for c in sql_calls() if c.verdict == "built"}
    assert set(SQL_ALLOWED) <= built, set(SQL_ALLOWED) - built


def test_sql_built_from_a_value_is_caught(tmp_path):
    module = tmp_path / "storage" / "bad.py"
    module.parent.mkdir()
    module.write_text(
        "def find(conn, name):\n"
        "    conn.execute(f\"SELECT * FROM t WHERE name = '{name}'\")\n"
        "    query = 'SELECT %s' % name\n"
        "    conn.execute(query)\n"
        "    conn.execute('SELECT * FROM t WHERE name = %s', (name,))\n"
        "    conn.execute(sql.SQL('SELECT {}').format(sql.Identifier(name)))\n"
    )
    verdicts = [c.verdict for c in sql_calls(tmp_path, ("storage",))]
    assert verdicts == ["built", "built", "constant", "composed"]


@services
def test_the_webhook_receiver_refuses_tampered_bodies_wrong_secrets_and_no_signature():
    findings = {f.subject: f for f in check_webhook_signatures()}
    replay = findings.pop("a replayed request (a correct signature, a stale timestamp)")
    assert not failures(list(findings.values()))
    assert len(findings) == 4
    assert replay.detail.startswith(("401", "204"))


def test_the_webhook_receiver_refuses_a_replayed_request():
    findings = {f.subject: f for f in check_webhook_signatures()}
    assert findings["a replayed request (a correct signature, a stale timestamp)"].ok


@services
def test_every_service_listens_on_loopback_only_with_its_defaults(local_stack, tmp_path):
    findings = check_bind_addresses(local_stack, tmp_path, lambda message: None)
    assert not failures(findings)
    started = [f for f in findings if f.subject.startswith("energywatch ")]
    assert len(started) == 7


def test_loopback_addresses_are_told_from_the_rest():
    for address in ("127.0.0.1", "127.0.0.53", "::1", "::ffff:7f00:1"):
        assert _loopback(address), address
    for address in ("0.0.0.0", "::", "10.0.0.1", "::ffff:a00:1"):
        assert not _loopback(address), address


def test_the_log_scan_finds_a_secret_wherever_it_was_written():
    known = {"smtp password": "smtp-0123456789abcdef"}
    findings = scan_for_secrets(
        {"clean.log": b"all fine", "leaky.log": b"login smtp-0123456789abcdef failed"}, known
    )
    assert [f.ok for f in findings] == [True, False]
    assert findings[1].detail == "smtp password"


@services
def test_a_full_run_of_the_main_job_logs_none_of_the_secrets_it_was_given(local_stack):
    from stack import StackSettings

    logs = StackSettings().home / "logs"
    findings = check_secrets_in_logs(local_stack, logs)
    assert not failures(findings)
    assert len(findings) > 3  # the run itself, its stdout and stderr, and the service logs
