"""The local stack (``energywatch stack``): real Kafka, PostgreSQL + TimescaleDB, Prometheus and
Mosquitto.

These tests drive the shared stack under ``.local/`` (the one other tests and engineers use):
they stop and restart single services, and always leave the whole stack running.
"""

import base64
import os
import secrets
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, LiteralString

import httpx
import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from prometheus_client import CollectorRegistry, Counter, start_http_server

from contracts.identifiers import uscc_check_character
from stack import (
    ServiceStatus,
    StackError,
    StackSettings,
    down,
    read_endpoints,
    register_scrape_target,
    status,
    unregister_scrape_target,
    up,
)
from stack.apt import deb822_entries, one_line_entries
from stack.kafka import new_cluster_id
from stack.mosquitto import GATEWAY_USER, broker_answer
from stack.mosquitto_passwd import entry_matches, hash_matches, write_entry
from stack.mqtt_accounts import remove_enterprise_account, set_enterprise_password
from stack.paths import StackPaths
from stack.postgres_admin import admin_connection
from stack.run_as import RunAs
from stack.scram import scram_sha256_verifier


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def stack(stack_settings: StackSettings) -> Iterator[StackSettings]:
    """The running stack; brought up again afterwards, whatever a test stopped."""
    up(stack_settings)
    yield stack_settings
    up(stack_settings)


def by_name(statuses: list[ServiceStatus]) -> dict[str, ServiceStatus]:
    return {s.name: s for s in statuses}


def scalar(conn: psycopg.Connection[Any], query: LiteralString, *params: object) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]


@pytest.mark.services
@pytest.mark.timeout(900)  # the first `up` on a fresh machine downloads and builds
def test_after_up_every_service_is_healthy(stack):
    statuses = status(stack)
    assert sorted(s.name for s in statuses) == ["kafka", "mosquitto", "postgres", "prometheus"]
    assert all(s.healthy for s in statuses), statuses


@pytest.mark.services
def test_a_second_up_returns_in_under_two_seconds(stack):
    started = time.monotonic()
    statuses = up(stack)
    elapsed = time.monotonic() - started
    assert all(s.healthy for s in statuses)
    assert elapsed < 2.0, f"warm up took {elapsed:.2f}s"


@pytest.mark.services
def test_the_endpoints_file_is_private_and_names_every_service(stack):
    path = StackPaths.of(stack).endpoints_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = [line.split("=", 1)[0] for line in path.read_text().splitlines()]
    assert keys == [
        "EW_KAFKA_BOOTSTRAP",
        "EW_DATABASE_URL",
        "EW_PROMETHEUS_URL",
        "EW_PROMETHEUS_TARGETS_DIR",
        "EW_MQTT_URL",
        "EW_MQTT_USERNAME",
        "EW_MQTT_PASSWORD",
    ]
    endpoints = read_endpoints(stack)
    assert endpoints.kafka_bootstrap == f"127.0.0.1:{stack.kafka_port}"
    assert endpoints.prometheus_url == f"http://127.0.0.1:{stack.prometheus_port}"
    assert endpoints.prometheus_targets_dir.is_dir()
    assert "**" in repr(endpoints.database_url)
    assert endpoints.mqtt_url == f"mqtt://127.0.0.1:{stack.mqtt_port}"
    assert endpoints.mqtt_username == "energywatch-gateway"
    assert "**" in repr(endpoints.mqtt_password)


@pytest.mark.services
def test_a_generated_password_is_readable_only_by_its_owner(stack):
    paths = StackPaths.of(stack)
    generated = [
        path
        for path, configured in [
            (paths.postgres_password_file, stack.postgres_password),
            (paths.mqtt_gateway_password_file, stack.mqtt_gateway_password),
        ]
        if configured is None
    ]
    if not generated:
        pytest.skip("EW_STACK_POSTGRES_PASSWORD and _MQTT_GATEWAY_PASSWORD are set")
    for secret in generated:
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
        assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700, secret


@pytest.mark.services
def test_kafka_creates_a_topic_and_round_trips_a_message(stack):
    bootstrap = read_endpoints(stack).kafka_bootstrap
    topic = f"stack-test-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        assert isinstance(admin.list_topics(), list)
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        producer.send(topic, key=b"meter-1", value=b"42.5 kWh").get(timeout=30)
        producer.close()
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=20_000,
        )
        first = next(consumer, None)  # consumer_timeout_ms bounds the wait
        consumer.close()
        assert first is not None, "no message within 20s"
        assert (first.key, first.value) == (b"meter-1", b"42.5 kWh")
    finally:
        admin.delete_topics([topic])
        admin.close()


@pytest.mark.services
def test_kafka_refuses_to_create_topics_on_first_use(stack):
    bootstrap = read_endpoints(stack).kafka_bootstrap
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=3000)
    try:
        with pytest.raises(Exception, match=r"(?i)timeout|not.*available|metadata"):
            producer.send(f"never-created-{uuid.uuid4().hex[:8]}", b"x").get(timeout=5)
    finally:
        producer.close(timeout=1)


@pytest.mark.services
def test_postgres_has_timescaledb_with_a_known_license(stack):
    url = read_endpoints(stack).database_url.get_secret_value()
    with psycopg.connect(url, connect_timeout=5) as conn:
        license_name = scalar(conn, "SHOW timescaledb.license")
        version = scalar(conn, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        telemetry = scalar(conn, "SHOW timescaledb.telemetry_level")
        fsync = scalar(conn, "SHOW fsync")
    assert license_name in ("apache", "timescale")
    assert version
    assert telemetry == "off"
    assert fsync == "on"


@pytest.mark.services
def test_postgres_makes_hypertables_in_a_database_the_role_creates(stack):
    url = read_endpoints(stack).database_url.get_secret_value()
    dbname = f"stack_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    try:
        with psycopg.connect(psycopg.conninfo.make_conninfo(url, dbname=dbname)) as conn:
            # A database the role creates gets the extension from the role, not from `up`.
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute("CREATE TABLE r (ts timestamptz NOT NULL, value_kwh double precision)")
            conn.execute("SELECT create_hypertable('r', 'ts')")
            conn.execute("INSERT INTO r VALUES (now(), 1.5)")
            total = scalar(conn, "SELECT sum(value_kwh) FROM r GROUP BY time_bucket('1 hour', ts)")
        assert total == 1.5
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.mark.services
def test_postgres_refuses_a_wrong_password(stack):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host="127.0.0.1",
            port=stack.postgres_port,
            user="energywatch",
            dbname="energywatch",
            password="wrong",
            connect_timeout=5,
        )


@pytest.mark.services
def test_scram_verifiers_match_what_postgres_computes(stack):
    postgres_dir = StackPaths.of(stack).service_dir("postgres")
    role = f"stack_test_{uuid.uuid4().hex[:8]}"
    with admin_connection(postgres_dir / "run", stack.postgres_port) as conn:
        # Let the server hash a known password, then recompute it with the same salt.
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(f"CREATE ROLE {role} PASSWORD 'correct horse'")
        try:
            verifier = scalar(conn, "SELECT rolpassword FROM pg_authid WHERE rolname = %s", role)
        finally:
            conn.execute(f"DROP ROLE {role}")
    salt = base64.b64decode(verifier.split("$")[1].split(":")[1])
    assert scram_sha256_verifier("correct horse", salt=salt) == verifier


@pytest.mark.services
def test_prometheus_is_ready(stack):
    url = read_endpoints(stack).prometheus_url
    assert httpx.get(f"{url}/-/ready", timeout=5).status_code == 200


@pytest.mark.services
def test_a_registered_scrape_target_is_scraped_without_a_restart(stack):
    registry = CollectorRegistry()
    Counter("stack_test_ticks", "ticks", registry=registry).inc()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    name = f"stack-test-{uuid.uuid4().hex[:6]}"
    try:
        register_scrape_target(stack, name, f"127.0.0.1:{port}")
        url = f"{read_endpoints(stack).prometheus_url}/api/v1/targets"
        deadline = time.monotonic() + 30
        found = []
        while time.monotonic() < deadline:
            active = httpx.get(url, timeout=5).json()["data"]["activeTargets"]
            found = [t for t in active if t["labels"].get("service") == name]
            if found and found[0]["health"] == "up":
                break
            time.sleep(1)
        assert found, f"target {name} not discovered within 30s"
        assert found[0]["labels"]["job"] == "energywatch"
        assert found[0]["scrapeUrl"] == f"http://127.0.0.1:{port}/metrics"
        assert found[0]["health"] == "up", found[0].get("lastError")
    finally:
        unregister_scrape_target(stack, name)
        server.shutdown()
        thread.join(timeout=5)


@pytest.mark.services
def test_promtool_accepts_the_generated_config(stack):
    config = StackPaths.of(stack).service_dir("prometheus") / "prometheus.yml"
    result = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    # the pipeline's alerting rules, the same ones docker-compose's Prometheus loads
    assert "rules/pipeline.yml" in result.stdout + result.stderr


def listening_addresses(port: int) -> set[str]:
    """The IPv4 and IPv6 addresses something listens on at ``port`` (from /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def gateway_password(stack: StackSettings) -> str:
    return read_endpoints(stack).mqtt_password.get_secret_value()


@pytest.mark.services
def test_mosquitto_listens_on_loopback_only_and_lets_no_one_in_anonymously(stack):
    assert listening_addresses(stack.mqtt_port) == {"0100007F"}  # 127.0.0.1, little-endian hex
    anonymous = broker_answer("127.0.0.1", stack.mqtt_port)
    assert (anonymous.logged_in, anonymous.connack) == (False, "Not authorized")
    config = StackPaths.of(stack).service_dir("mosquitto") / "mosquitto.conf"
    assert "allow_anonymous false" in config.read_text().splitlines()


@pytest.mark.services
def test_the_gateway_account_logs_in_and_may_subscribe_to_every_enterprise_s_uploads(stack):
    answer = broker_answer(
        "127.0.0.1",
        stack.mqtt_port,
        username=GATEWAY_USER,
        password=gateway_password(stack),
        subscribe=f"ew-stack-{uuid.uuid4().hex[:6]}/+/readings",
    )
    assert (answer.logged_in, answer.subscribed) == (True, True)
    wrong = broker_answer(
        "127.0.0.1", stack.mqtt_port, username=GATEWAY_USER, password="not-the-password"
    )
    assert (wrong.logged_in, wrong.connack) == (False, "Not authorized")


@pytest.mark.services
def test_mosquitto_s_files_are_private_to_the_broker_s_user(stack):
    folder = StackPaths.of(stack).service_dir("mosquitto")
    owner = RunAs.named("mosquitto") if os.geteuid() == 0 else RunAs.current()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("mosquitto.conf", "acl", "passwd"):
        info = (folder / name).stat()
        assert stat.S_IMODE(info.st_mode) == 0o600, name
        assert info.st_uid == owner.uid, name
    assert (folder / "data").stat().st_uid == owner.uid


@pytest.mark.services
def test_an_enterprise_account_works_at_once_and_a_new_password_replaces_the_old(stack):
    first17 = "91110000" + "".join(
        secrets.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9)
    )
    code = first17 + uscc_check_character(first17)

    def login(password: str) -> bool:
        answer = broker_answer("127.0.0.1", stack.mqtt_port, username=code, password=password)
        return answer.logged_in

    try:
        assert set_enterprise_password(stack, code, "first password") is True
        assert login("first password")
        assert set_enterprise_password(stack, code, "first password") is False  # unchanged
        assert set_enterprise_password(stack, code, "second password") is True
        assert login("second password")
        assert not login("first password")
    finally:
        assert remove_enterprise_account(stack, code) is True
    wait_for = time.monotonic() + 5
    while login("second password") and time.monotonic() < wait_for:
        time.sleep(0.05)  # the broker rereads its files after SIGHUP, asynchronously
    assert not login("second password")
    assert remove_enterprise_account(stack, code) is False


@pytest.mark.services
def test_password_hashes_are_checked_the_way_mosquitto_passwd_writes_them(stack, tmp_path):
    password_file = tmp_path / "passwd"
    password_file.write_text("")
    me = RunAs.current()
    write_entry(
        password_file, "91110000MA01ABCD1X", "päss wörd:$7", run_as=me, log_path=tmp_path / "log"
    )
    write_entry(password_file, "other", "x", run_as=me, log_path=tmp_path / "log")
    assert entry_matches(password_file, "91110000MA01ABCD1X", "päss wörd:$7")
    assert not entry_matches(password_file, "91110000MA01ABCD1X", "päss wörd:$8")
    assert not entry_matches(password_file, "nobody", "x")
    assert "päss" not in password_file.read_text()
    assert not hash_matches("$6$salt$hash", "x")  # an older scheme is never taken as a match


@pytest.mark.services
def test_status_names_the_exact_reason_when_the_broker_refuses_the_gateway(stack):
    from pydantic import SecretStr

    stale = stack.model_copy(update={"mqtt_gateway_password": SecretStr("not-the-password")})
    detail = by_name(status(stale))["mosquitto"].detail
    assert "the broker refused energywatch-gateway's login (Not authorized)" in detail


@pytest.mark.services
def test_status_says_mosquitto_is_stopped_and_up_restarts_it(stack):
    assert [s.name for s in down(stack, only=["mosquitto"])] == ["mosquitto"]
    detail = by_name(status(stack))["mosquitto"].detail
    assert "stopped" in detail
    assert "mosquitto.pid" in detail
    assert by_name(up(stack))["mosquitto"].healthy


@pytest.mark.services
def test_status_says_why_a_stopped_service_is_unhealthy_and_up_restarts_it(stack):
    stopped = down(stack, only=["prometheus"])
    assert [s.name for s in stopped] == ["prometheus"]

    statuses = by_name(status(stack))
    assert not statuses["prometheus"].healthy
    assert "stopped" in statuses["prometheus"].detail
    assert "prometheus.pid" in statuses["prometheus"].detail
    assert statuses["kafka"].healthy
    assert statuses["postgres"].healthy

    assert by_name(up(stack))["prometheus"].healthy


@pytest.mark.services
def test_status_names_the_pid_and_log_of_a_crashed_service(stack):
    pid_file = StackPaths.of(stack).service_dir("prometheus") / "prometheus.pid"
    pid = int(pid_file.read_text())
    os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        status(stack)  # reaps the process if this test process started it
        time.sleep(0.1)

    detail = by_name(status(stack))["prometheus"].detail
    assert f"pid {pid} in " in detail
    assert "is not running; log: " in detail
    assert "prometheus.log" in detail

    assert by_name(up(stack))["prometheus"].healthy


@pytest.mark.services
def test_a_port_held_by_another_process_is_named(stack):
    down(stack, only=["prometheus"])
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        squatter.bind(("127.0.0.1", stack.prometheus_port))
        squatter.listen()
        detail = by_name(status(stack))["prometheus"].detail
        assert detail == f"port {stack.prometheus_port} held by another process"
        with pytest.raises(StackError, match=f"port {stack.prometheus_port} held"):
            up(stack)
    finally:
        squatter.close()
    assert by_name(up(stack))["prometheus"].healthy


def test_a_kafka_cluster_id_is_22_url_safe_characters_not_starting_with_a_dash():
    for _ in range(200):
        cluster_id = new_cluster_id()
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert set(cluster_id) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


def test_the_debian_mirror_is_read_from_both_apt_source_formats():
    deb822 = (
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )
    assert next(iter(deb822_entries(deb822))) == (
        ["deb"],
        ["http://mirror.example/debian"],
        ["bookworm", "bookworm-updates"],
    )
    one_line = (
        "# comment\ndeb [signed-by=/k.gpg arch=amd64] http://m.example/debian bookworm main\n"
    )
    assert list(one_line_entries(one_line)) == [
        (["deb"], ["http://m.example/debian"], ["bookworm"])
    ]


def test_a_target_name_that_is_not_a_plain_word_is_refused(tmp_path):
    settings = StackSettings(home=tmp_path)
    with pytest.raises(ValueError, match="target name"):
        register_scrape_target(settings, "../escape", "127.0.0.1:9000")
    with pytest.raises(ValueError, match="host:port"):
        register_scrape_target(settings, "ok", "http://127.0.0.1:9000/metrics")
    written = register_scrape_target(settings, "ok", "127.0.0.1:9000")
    assert written.parent == tmp_path / "prometheus" / "targets"


def test_a_broker_username_must_be_a_credit_code(tmp_path):
    settings = StackSettings(home=tmp_path)
    for username in ("energywatch-gateway", "91110000MA01ABCD1", "a/+/#", "91110000MA01ABCDIX"):
        with pytest.raises(ValueError, match="credit code"):
            set_enterprise_password(settings, username, "x")


def test_a_stack_that_was_never_brought_up_says_how_to_install_it(tmp_path):
    settings = StackSettings(
        home=tmp_path / "home",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        postgres_port=free_port(),
        prometheus_port=free_port(),
        mqtt_port=free_port(),
    )
    statuses = status(settings)
    assert [s.name for s in statuses] == ["postgres", "kafka", "prometheus", "mosquitto"]
    for item in statuses:
        assert not item.healthy
        assert item.detail == "not installed: run `energywatch stack up`"
    with pytest.raises(StackError, match="run `energywatch stack up`"):
        read_endpoints(settings)
