"""The docker-compose stack, checked by reading its files.

There is no Docker engine on the development machines, so nothing here starts a container.
These tests read docker-compose.yml, the Prometheus config and rules, the Grafana
provisioning files and the MQTT broker's config, and check what can be checked without Docker:
which images, which ports, which dependencies, which mounts, and that the files the containers
load are valid (the broker's config is loaded by a real mosquitto where one is installed).
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml

from energywatch.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
PIPELINE_RULES = REPO_ROOT / "deploy" / "prometheus" / "rules" / "pipeline.yml"
GRAFANA_PROVISIONING = REPO_ROOT / "deploy" / "grafana" / "provisioning"
MOSQUITTO_CONFIG = REPO_ROOT / "deploy" / "mosquitto"

INFRASTRUCTURE = {"kafka", "timescaledb", "prometheus", "grafana", "mosquitto"}
# The gateways through which enterprises send data: they publish to Kafka and nothing else.
INGEST_SERVICES = {"ingest-hj212", "ingest-http", "ingest-mqtt"}
PROJECT_SERVICES = {
    "topics",
    "register-sync",
    "worker",
    "voc-worker",
    "evaluator",
    "alerts-api",
    "notifier",
    "simulator",
} | INGEST_SERVICES
# Start once the topics exist and TimescaleDB is healthy; the simulator among them is a batch
# job, the others run on.
AFTER_TOPICS = {"worker", "voc-worker", "evaluator", "alerts-api", "notifier", "simulator"}
LONG_RUNNING_PROJECT_SERVICES = {
    "worker",
    "voc-worker",
    "evaluator",
    "alerts-api",
    "notifier",
} | INGEST_SERVICES
REGISTER_IN_CONTAINER = "/app/plans/registers/demo.yaml"

# "${NAME}", "${NAME:?message}", "${NAME:-}" (an empty default) and nothing else.
ENV_REFERENCE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(?::\?[^}]*|:-|\?[^}]*|-)?\}$")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)


def load_yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path} is not a YAML mapping"
    return cast(dict[str, Any], document)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


@pytest.fixture(scope="module")
def metrics_ports() -> dict[str, int]:
    """The project's own defaults for each process's metrics port."""
    settings = pytest.importorskip(
        "energywatch.settings", reason="the energywatch package is not importable here"
    ).Settings
    # every worker, whatever its streams, serves on the worker's port (its own container)
    setting = {"voc-worker": "worker"}
    return {
        name: settings.model_fields[
            f"{setting.get(name, name).replace('-', '_')}_metrics_port"
        ].default
        for name in AFTER_TOPICS
    }


@pytest.fixture(scope="module")
def ingest_metrics_port() -> int:
    """The default metrics port every ingest gateway serves on (one per container)."""
    settings = pytest.importorskip(
        "energywatch.settings", reason="the energywatch package is not importable here"
    ).Settings
    return int(settings.model_fields["ingest_metrics_port"].default)


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    return load_yaml(PROMETHEUS_CONFIG)


def environment(service: dict[str, Any]) -> dict[str, Any]:
    """A service's environment as a mapping, whichever of the two compose forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def published_ports(service: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    """(host ip, host port, container port) for each published port, short or long syntax."""
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append((entry.get("host_ip"), str(entry.get("published")), str(entry["target"])))
            continue
        parts = str(entry).split(":")
        if len(parts) == 3:
            ports.append((parts[0], parts[1], parts[2]))
        elif len(parts) == 2:
            ports.append((None, parts[0], parts[1]))
        else:
            ports.append((None, "", parts[0]))
    return ports


def mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, container target, read-only) for each volume entry, short or long syntax."""
    result = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            result.append((entry["source"], entry["target"], bool(entry.get("read_only"))))
            continue
        parts = entry.split(":")
        read_only = len(parts) > 2 and "ro" in parts[2].split(",")
        result.append((parts[0], parts[1], read_only))
    return result


def is_bind_mount(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def host_path_for(service: dict[str, Any], container_path: str) -> Path:
    """Where in the repo a file the container reads comes from, through its bind mounts."""
    wanted = PurePosixPath(container_path)
    for source, target, _ in mounts(service):
        if not is_bind_mount(source):
            continue
        target_path = PurePosixPath(target)
        if wanted == target_path or target_path in wanted.parents:
            return REPO_ROOT / source / wanted.relative_to(target_path)
    raise AssertionError(f"{container_path} is not bind-mounted from the repo")


def kafka_listeners(value: str) -> dict[str, tuple[str, int]]:
    """'NAME://host:port,...' as {NAME: (host, port)}."""
    listeners = {}
    for item in value.split(","):
        name, address = item.split("://", 1)
        host, port = address.rsplit(":", 1)
        listeners[name] = (host, int(port))
    return listeners


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """{service: condition}; the short list form means service_started."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def image_and_tag(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":")
    return name, tag


# --- the file and its services -----------------------------------------------------------


def test_compose_file_uses_the_compose_spec_without_a_version_key(compose):
    assert "version" not in compose
    assert compose["name"] == "energywatch"


def test_stack_has_the_infrastructure_and_the_project_services(services):
    assert set(services) == INFRASTRUCTURE | PROJECT_SERVICES


def test_kafka_is_apache_kafka_3_9(services):
    name, tag = image_and_tag(services["kafka"]["image"])
    assert name == "apache/kafka"
    assert tag.startswith("3.9.")


def test_timescaledb_is_the_full_edition_on_postgresql_15(services):
    name, tag = image_and_tag(services["timescaledb"]["image"])
    # timescale/timescaledb-ha is another image; "-oss" tags are the Apache-only edition.
    assert name == "timescale/timescaledb"
    assert tag.endswith("-pg15")
    assert "oss" not in tag


def test_prometheus_and_grafana_use_pinned_official_images(services):
    prometheus, prometheus_tag = image_and_tag(services["prometheus"]["image"])
    grafana, grafana_tag = image_and_tag(services["grafana"]["image"])
    assert (prometheus, grafana) == ("prom/prometheus", "grafana/grafana")
    assert re.fullmatch(r"v2\.\d+\.\d+", prometheus_tag)
    assert re.fullmatch(r"11\.\d+\.\d+", grafana_tag)


def test_project_services_build_one_image_from_the_repo(services):
    for name in PROJECT_SERVICES:
        build = services[name]["build"]
        context = build["context"] if isinstance(build, dict) else build
        assert context == ".", name
        assert services[name]["image"] == "energywatch:local", name
    assert (REPO_ROOT / "Dockerfile").is_file()


def test_project_services_run_the_expected_cli_commands(services):
    commands = {name: services[name]["command"] for name in PROJECT_SERVICES}
    assert commands == {
        "topics": ["topics", "create"],
        "register-sync": ["register", "sync", "--register", REGISTER_IN_CONTAINER],
        "worker": ["worker", "--stream", "readings"],
        "voc-worker": ["worker", "--stream", "voc", "--stream", "production"],
        "evaluator": ["alerts", "evaluate"],
        "alerts-api": ["alerts", "api"],
        "notifier": ["notify"],
        "simulator": [
            "simulate",
            "--fleet",
            "/opt/energywatch/src/scenarios/fleets/one-of-each.yaml",
            "--duration",
            "2d",
        ],
        "ingest-hj212": ["ingest", "hj212", "--register", REGISTER_IN_CONTAINER],
        "ingest-http": ["ingest", "http", "--register", REGISTER_IN_CONTAINER],
        "ingest-mqtt": ["ingest", "mqtt", "--register", REGISTER_IN_CONTAINER],
    }


def test_dockerfile_runs_the_cli_as_a_non_root_user():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert "pip install --no-cache-dir ." in dockerfile
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users, "the image must switch away from root"
    assert users[-1] not in {"root", "0"}
    assert re.search(r'^ENTRYPOINT \["energywatch"\]', dockerfile, re.MULTILINE)


def test_docker_build_context_leaves_out_local_state_and_secrets():
    ignored = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".local", ".env"} <= ignored


# --- network exposure --------------------------------------------------------------------


def test_every_published_port_binds_to_loopback_only(services):
    published = [
        (name, port) for name, service in services.items() for port in published_ports(service)
    ]
    assert published, "the stack should publish at least Grafana's port"
    for name, (host_ip, host_port, container_port) in published:
        assert host_ip == "127.0.0.1", f"{name} publishes {host_port}:{container_port} widely"


def test_published_ports_are_the_documented_ones(services):
    ports = {
        name: {(host, container) for _, host, container in published_ports(service)}
        for name, service in services.items()
        if "ports" in service
    }
    assert ports == {
        "grafana": {("3000", "3000")},
        "prometheus": {("39090", "9090")},
        "timescaledb": {("35432", "5432")},
        "kafka": {("39092", "39092")},
        "mosquitto": {("31883", "1883")},
        "ingest-hj212": {("32120", "32120")},
        "ingest-http": {("38443", "8443")},
        "alerts-api": {("38080", "38080")},
    }


def test_project_metrics_endpoints_are_not_published_to_the_host(services, ingest_metrics_port):
    for name in PROJECT_SERVICES:
        assert environment(services[name])["EW_METRICS_HOST"] == "0.0.0.0"
        if name not in INGEST_SERVICES | {"alerts-api"}:
            assert "ports" not in services[name], name
    # A gateway publishes the port devices send to, the API its own; never a metrics port.
    for name in INGEST_SERVICES:
        containers = {container for _, _, container in published_ports(services[name])}
        assert str(ingest_metrics_port) not in containers, name


@pytest.mark.parametrize(("name", "setting"), [("ingest-hj212", "HJ212"), ("ingest-http", "HTTP")])
def test_device_facing_gateways_listen_on_their_published_container_port(services, name, setting):
    env = environment(services[name])
    (published,) = published_ports(services[name])
    # 0.0.0.0 inside the container: the host publishes the port on 127.0.0.1 only.
    assert (env[f"EW_{setting}_HOST"], str(env[f"EW_{setting}_PORT"])) == ("0.0.0.0", published[2])


# --- start-up order ----------------------------------------------------------------------


def test_project_processes_wait_for_healthy_kafka_timescaledb_topics_and_the_register_sync(
    services,
):
    for name in AFTER_TOPICS:
        assert depends_on(services[name]) == {
            "kafka": "service_healthy",
            "timescaledb": "service_healthy",
            "topics": "service_completed_successfully",
            "register-sync": "service_completed_successfully",
        }, name


def test_register_sync_runs_once_against_a_healthy_timescaledb(services):
    """The one-shot that fills the reference tables (and migrates): it must not restart, or
    compose would never count it as completed and nothing after it would start."""
    sync = services["register-sync"]
    assert depends_on(sync) == {"timescaledb": "service_healthy"}
    assert sync.get("restart", "no") == "no"
    assert "healthcheck" not in sync
    assert "EW_DATABASE_URL" in environment(sync)


def test_register_sync_reads_the_repo_s_register_which_loads(services):
    from plans.register import load_register

    command = services["register-sync"]["command"]
    path = host_path_for(services["register-sync"], command[command.index("--register") + 1])
    assert path == REPO_ROOT / "plans" / "registers" / "demo.yaml"
    assert load_register(path).enterprises


def test_grafana_starts_once_the_reference_tables_are_filled(services):
    """The dashboards' variables and names read ref_*: with no manual step on `docker compose
    up`, Grafana waits for the sync to have completed."""
    assert depends_on(services["grafana"])["register-sync"] == "service_completed_successfully"


def test_ingest_gateways_wait_for_kafka_and_topics_and_the_mqtt_one_also_for_the_broker(services):
    after_kafka = {"kafka": "service_healthy", "topics": "service_completed_successfully"}
    assert depends_on(services["ingest-hj212"]) == after_kafka
    assert depends_on(services["ingest-http"]) == after_kafka
    assert depends_on(services["ingest-mqtt"]) == {**after_kafka, "mosquitto": "service_healthy"}


def test_topics_waits_for_a_healthy_kafka_and_runs_once(services):
    assert depends_on(services["topics"]) == {"kafka": "service_healthy"}
    # A restart policy would re-run it forever and it would never count as completed.
    assert services["topics"].get("restart", "no") == "no"


def test_every_service_waited_on_for_health_defines_a_healthcheck(services):
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition == "service_healthy":
                assert "test" in services[dependency].get("healthcheck", {}), dependency


def test_long_running_services_restart_unless_stopped(services):
    for name in INFRASTRUCTURE | LONG_RUNNING_PROJECT_SERVICES:
        assert services[name]["restart"] == "unless-stopped", name


def test_simulator_is_a_batch_job_restarted_only_after_a_failure(services):
    # `energywatch simulate` exits when it has produced its readings; restarting it after a
    # clean exit would replay them forever.
    assert services["simulator"]["restart"].startswith("on-failure")
    assert "healthcheck" not in services["simulator"]


def test_project_healthchecks_probe_each_service_s_own_metrics_port(
    services, metrics_ports, ingest_metrics_port
):
    ports = {**metrics_ports, **dict.fromkeys(INGEST_SERVICES, ingest_metrics_port)}
    for name in LONG_RUNNING_PROJECT_SERVICES:
        port = ports[name]
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/metrics" in probe, name


# --- Kafka -------------------------------------------------------------------------------


def test_kafka_runs_in_kraft_mode_as_one_combined_node(services):
    env = environment(services["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["CLUSTER_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert not any("zookeeper" in name for name in services)
    assert not any(key.startswith("KAFKA_ZOOKEEPER") for key in env)


def test_kafka_does_not_create_topics_on_demand(services):
    assert environment(services["kafka"])["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_kafka_internal_topics_fit_a_single_broker(services):
    env = environment(services["kafka"])
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert str(env[key]) == "1", key


def test_kafka_listeners_separate_controller_containers_and_host(services):
    env = environment(services["kafka"])
    listeners = kafka_listeners(env["KAFKA_LISTENERS"])
    advertised = kafka_listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )

    assert set(listeners) == {"CONTROLLER", "PLAINTEXT", "EXTERNAL"}
    assert set(protocols) == set(listeners)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    # A controller listener is never advertised to clients.
    assert set(advertised) == {"PLAINTEXT", "EXTERNAL"}
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "PLAINTEXT"
    assert advertised["PLAINTEXT"] == ("kafka", listeners["PLAINTEXT"][1])
    assert listeners["CONTROLLER"][1] == int(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].rsplit(":")[1])


def test_kafka_external_listener_is_advertised_where_it_is_published(services):
    env = environment(services["kafka"])
    listener_port = kafka_listeners(env["KAFKA_LISTENERS"])["EXTERNAL"][1]
    host, advertised_port = kafka_listeners(env["KAFKA_ADVERTISED_LISTENERS"])["EXTERNAL"]
    assert (host, advertised_port) == ("127.0.0.1", 39092)
    # Clients on the host reconnect to the advertised address, so both ends must match.
    assert ("127.0.0.1", str(advertised_port), str(listener_port)) in published_ports(
        services["kafka"]
    )


def test_project_services_reach_kafka_on_its_internal_listener(services):
    advertised = kafka_listeners(environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"])[
        "PLAINTEXT"
    ]
    for name in PROJECT_SERVICES:
        assert environment(services[name])["EW_KAFKA_BOOTSTRAP"] == "{}:{}".format(*advertised), (
            name
        )


# --- TimescaleDB and secrets -------------------------------------------------------------


def test_project_services_connect_to_the_compose_timescaledb(services):
    db_env = environment(services["timescaledb"])
    for name in PROJECT_SERVICES - INGEST_SERVICES:
        url = urlsplit(environment(services[name])["EW_DATABASE_URL"])
        assert url.scheme == "postgresql", name
        assert (url.hostname, url.port) == ("timescaledb", 5432), name
        assert url.username == db_env["POSTGRES_USER"], name
        assert url.path == "/" + db_env["POSTGRES_DB"], name
        assert url.password == "${EW_POSTGRES_PASSWORD}", name


def test_stack_refuses_to_start_without_the_database_and_grafana_passwords(services):
    assert (
        environment(services["timescaledb"])["POSTGRES_PASSWORD"]
        == "${EW_POSTGRES_PASSWORD:?set EW_POSTGRES_PASSWORD}"
    )
    assert (
        environment(services["grafana"])["GF_SECURITY_ADMIN_PASSWORD"]
        == "${GF_ADMIN_PASSWORD:?set GF_ADMIN_PASSWORD}"
    )


def test_no_secret_is_written_literally_in_the_compose_file(services):
    secrets = [
        (name, key, value)
        for name, service in services.items()
        for key, value in environment(service).items()
        if SECRET_KEY.search(key)
    ]
    assert len(secrets) >= 4
    for name, key, value in secrets:
        assert ENV_REFERENCE.match(str(value)), f"{name}.{key} must be a ${{...}} reference"
    for name, service in services.items():
        for key, value in environment(service).items():
            password = urlsplit(str(value)).password if "://" in str(value) else None
            if password is not None:
                assert ENV_REFERENCE.match(password), f"{name}.{key} has a literal password"


def test_ingest_gateways_get_no_database_settings(services):
    for name in INGEST_SERVICES:
        assert not any(key.startswith("EW_DATABASE") for key in environment(services[name]))


def test_the_broker_and_the_mqtt_gateway_alone_get_the_mqtt_password_and_require_it(services):
    required = "${EW_MQTT_PASSWORD:?set EW_MQTT_PASSWORD}"
    holders = {
        name for name, service in services.items() if "EW_MQTT_PASSWORD" in environment(service)
    }
    assert holders == {"mosquitto", "ingest-mqtt"}
    for name in holders:
        assert environment(services[name])["EW_MQTT_PASSWORD"] == required, name
    # The broker's start-up script and healthcheck read the variable at run time ($$ escapes
    # compose's interpolation); the password itself is never in the file.
    script = " ".join(services["mosquitto"]["command"])
    probe = " ".join(services["mosquitto"]["healthcheck"]["test"])
    assert '"$$EW_MQTT_PASSWORD"' in script
    assert '-P "$$EW_MQTT_PASSWORD"' in probe


def test_notifier_alone_gets_the_webhook_settings_and_requires_them(services):
    env = environment(services["notifier"])
    assert env["EW_WEBHOOK_URL"].startswith("${EW_WEBHOOK_URL:?")
    assert env["EW_WEBHOOK_SECRET"].startswith("${EW_WEBHOOK_SECRET:?")
    for name in PROJECT_SERVICES - {"notifier"}:
        assert not any(key.startswith("EW_WEBHOOK") for key in environment(services[name]))


def test_environment_values_are_strings_or_numbers_never_yaml_booleans(services):
    # Compose rejects `true`/`false` as environment values; they must be quoted.
    for name, service in services.items():
        for key, value in environment(service).items():
            assert not isinstance(value, bool), f"{name}.{key}"


# --- volumes and mounts ------------------------------------------------------------------


def test_stateful_services_keep_their_data_in_declared_named_volumes(compose, services):
    declared = set(compose.get("volumes") or {})
    data_dirs = {
        "kafka": "/var/lib/kafka/data",
        "timescaledb": "/var/lib/postgresql/data",
        "prometheus": "/prometheus",
        "grafana": "/var/lib/grafana",
        "mosquitto": "/mosquitto/data",
    }
    for name, data_dir in data_dirs.items():
        named = {target: source for source, target, _ in mounts(services[name])}
        assert named.get(data_dir) in declared, name
    assert environment(services["kafka"])["KAFKA_LOG_DIRS"] == data_dirs["kafka"]


def test_every_bind_mounted_host_path_exists_in_the_repo_and_is_read_only(services):
    binds = [
        (name, source, read_only)
        for name, service in services.items()
        for source, _, read_only in mounts(service)
        if is_bind_mount(source)
    ]
    assert binds
    for name, source, read_only in binds:
        assert source.startswith("./"), f"{name} mounts {source} from outside the repo"
        assert (REPO_ROOT / source).exists(), f"{name} mounts missing {source}"
        assert read_only, f"{name} mounts {source} writable"


def test_grafana_mounts_provisioning_and_the_dashboards_folder(services):
    targets = {target: source for source, target, _ in mounts(services["grafana"])}
    assert targets["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    assert targets["/var/lib/grafana/dashboards"] == "./dashboards/json"


def test_grafana_keeps_anonymous_access_and_sign_up_off(services):
    env = environment(services["grafana"])
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"


# --- Prometheus --------------------------------------------------------------------------


def prometheus_config_path(services: dict[str, dict[str, Any]]) -> Path:
    flags = dict(
        arg.removeprefix("--").split("=", 1)
        for arg in services["prometheus"]["command"]
        if arg.startswith("--") and "=" in arg
    )
    return host_path_for(services["prometheus"], flags["config.file"])


def test_prometheus_loads_the_config_in_deploy_prometheus(services):
    assert prometheus_config_path(services) == PROMETHEUS_CONFIG


def test_prometheus_scrapes_every_project_metrics_endpoint(services):
    config = load_yaml(prometheus_config_path(services))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {
        target for group in jobs["energywatch"]["static_configs"] for target in group["targets"]
    }
    assert targets == {
        "worker:39101",
        "voc-worker:39101",
        "notifier:39102",
        "simulator:39103",
        "evaluator:39105",
        "alerts-api:39106",
    } | {f"{name}:39104" for name in INGEST_SERVICES}
    for target in targets:
        assert target.split(":")[0] in services, target


def test_prometheus_scrape_ports_match_the_settings_defaults(prometheus_config, metrics_ports):
    by_service = {
        group["labels"]["service"]: group["targets"]
        for job in prometheus_config["scrape_configs"]
        if job["job_name"] == "energywatch"
        for group in job["static_configs"]
    }
    ingest_port = Settings.model_fields["ingest_metrics_port"].default
    expected = {name: [f"{name}:{port}"] for name, port in metrics_ports.items()}
    expected |= {name: [f"{name}:{ingest_port}"] for name in INGEST_SERVICES}
    assert by_service == expected


def test_prometheus_scrapes_itself(prometheus_config):
    jobs = {job["job_name"]: job for job in prometheus_config["scrape_configs"]}
    assert jobs["prometheus"]["static_configs"][0]["targets"] == ["localhost:9090"]


def test_prometheus_loads_the_pipeline_rules(prometheus_config):
    matched = {
        path
        for pattern in prometheus_config["rule_files"]
        for path in PROMETHEUS_CONFIG.parent.glob(pattern)
    }
    assert PIPELINE_RULES in matched


def test_pipeline_rules_alert_on_a_down_worker_and_on_dead_letters():
    rules = {
        rule["alert"]: rule
        for group in load_yaml(PIPELINE_RULES)["groups"]
        for rule in group["rules"]
    }
    worker_down = rules["EnergyWatchWorkerDown"]
    assert 'job="energywatch"' in worker_down["expr"]
    assert worker_down["expr"].rstrip().endswith("== 0")
    assert worker_down["for"] == "1m"
    dead_letters = rules["EnergyWatchDeadLettersIncreasing"]["expr"]
    assert "energywatch_stream_dead_letters_total" in dead_letters
    assert "energywatch_alerts_dead_letters_total" in dead_letters
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not on PATH (apt-get install -y prometheus provides it)")
    return path


def test_promtool_accepts_the_prometheus_config(promtool):
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_pipeline_rules(promtool):
    result = subprocess.run(
        [promtool, "check", "rules", str(PIPELINE_RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def alert_annotations(alertname: str, labels: dict[str, str]) -> dict[str, str]:
    """A rule's annotations as Prometheus renders them for an alert with these labels."""
    rules = load_yaml(PIPELINE_RULES)["groups"]
    (rule,) = [r for group in rules for r in group["rules"] if r.get("alert") == alertname]
    rendered = {}
    for key, template in rule["annotations"].items():
        text = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels[m.group(1)], template)
        assert "{{" not in text, f"{alertname}.{key} uses templating this test cannot render"
        rendered[key] = text
    return rendered


def prometheus_series(metric: str, labels: dict[str, str]) -> str:
    return metric + "{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


def promtool_test_rules(promtool: str, tmp_path: Path, tests: list[dict[str, Any]]) -> None:
    unit_tests = tmp_path / "pipeline_test.yml"
    unit_tests.write_text(
        yaml.safe_dump(
            {"rule_files": [str(PIPELINE_RULES)], "evaluation_interval": "15s", "tests": tests}
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [promtool, "test", "rules", str(unit_tests)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def firing(alertname: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"exp_labels": labels, "exp_annotations": alert_annotations(alertname, labels)}


def test_worker_down_alert_fires_after_a_minute_and_only_for_the_worker(promtool, tmp_path):
    # scrapes every 15s:  worker     0 0 0 0 0 0 0 0 ...  (down from the start)
    #                     notifier   0 0 0 0 0 0 0 0 ...  (down too: a different, slower alert)
    #                     simulator  0 0 0 0 0 0 0 0 ...  (a finished batch job: no alert)
    # WorkerDown:         pending --|firing from 1m, for the worker alone
    # TargetDown:         pending ----------------------|firing from 5m, for the notifier alone
    worker = {"job": "energywatch", "service": "worker", "instance": "worker:39101"}
    notifier = {"job": "energywatch", "service": "notifier", "instance": "notifier:39102"}
    simulator = {"job": "energywatch", "service": "simulator", "instance": "simulator:39103"}
    for target in (worker, notifier, simulator):  # the rules select on what a target is
        target["component"] = target["service"]
    promtool_test_rules(
        promtool,
        tmp_path,
        [
            {
                "interval": "15s",
                "input_series": [
                    {"series": prometheus_series("up", target), "values": "0x30"}
                    for target in (worker, notifier, simulator)
                ],
                "alert_rule_test": [
                    {"eval_time": "45s", "alertname": "EnergyWatchWorkerDown", "exp_alerts": []},
                    {
                        "eval_time": "2m",
                        "alertname": "EnergyWatchWorkerDown",
                        "exp_alerts": [
                            firing("EnergyWatchWorkerDown", {**worker, "severity": "critical"})
                        ],
                    },
                    {"eval_time": "4m", "alertname": "EnergyWatchTargetDown", "exp_alerts": []},
                    {
                        "eval_time": "6m",
                        "alertname": "EnergyWatchTargetDown",
                        "exp_alerts": [
                            firing("EnergyWatchTargetDown", {**notifier, "severity": "warning"})
                        ],
                    },
                ],
            }
        ],
    )


def test_dead_letter_alert_fires_only_once_dead_letters_keep_increasing(promtool, tmp_path):
    # worker, every 15s:    0 0 0 ... 0 (20 min flat) | 1 2 3 4 ... (one more every scrape)
    # notifier, every 15s:  3 3 3 ... 3 (old dead letters, never more)
    # alert:                none at 15m                | pending from 20m15s, firing by 27m,
    #                                                    for the worker's kind alone
    worker = {"job": "energywatch", "service": "worker", "instance": "worker:39101"}
    notifier = {"job": "energywatch", "service": "notifier", "instance": "notifier:39102"}
    bad_readings = {**worker, "kind": "invalid_reading"}
    promtool_test_rules(
        promtool,
        tmp_path,
        [
            {
                "interval": "15s",
                "input_series": [
                    {
                        "series": prometheus_series(
                            "energywatch_stream_dead_letters_total", bad_readings
                        ),
                        "values": "0x80 1+1x40",
                    },
                    {
                        "series": prometheus_series(
                            "energywatch_alerts_dead_letters_total",
                            {**notifier, "kind": "undeliverable"},
                        ),
                        "values": "3x120",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "15m",
                        "alertname": "EnergyWatchDeadLettersIncreasing",
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": "27m",
                        "alertname": "EnergyWatchDeadLettersIncreasing",
                        "exp_alerts": [
                            firing(
                                "EnergyWatchDeadLettersIncreasing",
                                {
                                    "job": "energywatch",
                                    "service": "worker",
                                    "stage": "readings",
                                    "kind": "invalid_reading",
                                    "severity": "warning",
                                },
                            )
                        ],
                    },
                ],
            }
        ],
    )


# --- the MQTT broker and the ingest gateways ----------------------------------------------


def mosquitto_settings(path: Path) -> list[tuple[str, str]]:
    """(option, value) for each setting line of a mosquitto config file, in order."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            option, _, value = line.strip().partition(" ")
            pairs.append((option, value.strip()))
    return pairs


def broker_config_path(services: dict[str, dict[str, Any]]) -> Path:
    script = services["mosquitto"]["command"][-1]
    match = re.search(r"exec mosquitto -c (\S+)$", script)
    assert match, "the broker's command must end by exec-ing mosquitto with its config"
    return host_path_for(services["mosquitto"], match.group(1))


def test_mosquitto_is_the_pinned_eclipse_image_with_the_repo_s_config(services):
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2.0.18"
    targets = {target: (source, ro) for source, target, ro in mounts(services["mosquitto"])}
    assert targets["/mosquitto/config"] == ("./deploy/mosquitto", True)
    assert broker_config_path(services) == MOSQUITTO_CONFIG / "mosquitto.conf"


def test_the_compose_broker_requires_a_login_and_keeps_sessions_in_its_volume(services):
    config = dict(mosquitto_settings(broker_config_path(services)))
    assert config["allow_anonymous"] == "false"
    assert config["persistence"] == "true"
    assert config["retain_available"] == "false"
    data_volume = {target for source, target, _ in mounts(services["mosquitto"])} - {
        "/mosquitto/config"
    }
    assert data_volume == {"/mosquitto/data"}
    # The password file changes at run time: it lives in the volume, not the read-only config.
    assert config["password_file"].startswith("/mosquitto/data/")
    assert config["persistence_location"].startswith("/mosquitto/data/")
    assert host_path_for(services["mosquitto"], config["acl_file"]) == MOSQUITTO_CONFIG / "acl"
    (listener,) = [
        value
        for option, value in mosquitto_settings(broker_config_path(services))
        if option == "listener"
    ]
    assert listener == published_ports(services["mosquitto"])[0][2]


def test_the_compose_acl_has_the_same_rules_as_the_local_stack_s():
    def rules(text: str) -> list[str]:
        return [
            line.strip()
            for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ]

    template = (REPO_ROOT / "stack" / "templates" / "mosquitto.acl").read_text(encoding="utf-8")
    local = rules(template.replace("$gateway_user", "energywatch-gateway"))
    assert rules((MOSQUITTO_CONFIG / "acl").read_text(encoding="utf-8")) == local
    assert "pattern write +/%u/readings" in local
    assert "pattern read +/%u/acks" in local


def test_the_mqtt_gateway_reaches_the_broker_inside_the_compose_network(services):
    env = environment(services["ingest-mqtt"])
    url = urlsplit(env["EW_MQTT_URL"])
    (published,) = published_ports(services["mosquitto"])
    assert (url.scheme, url.hostname, str(url.port)) == ("mqtt", "mosquitto", published[2])
    assert env["EW_MQTT_USERNAME"] == "energywatch-gateway"
    assert "energywatch-gateway" in " ".join(services["mosquitto"]["command"])


def test_ingest_gateways_read_the_register_from_the_repo_s_plans_folder(services):
    for name in INGEST_SERVICES:
        register = host_path_for(services[name], REGISTER_IN_CONTAINER)
        assert register == REPO_ROOT / "plans" / "registers" / "demo.yaml", name


@pytest.fixture(scope="module")
def mosquitto_binary() -> str:
    path = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if path is None:
        pytest.skip("mosquitto is not installed (`energywatch stack up` installs it)")
    return path


def test_a_real_mosquitto_runs_the_compose_config_with_its_accounts_and_acl(
    mosquitto_binary, tmp_path
):
    from stack.mosquitto import broker_answer
    from stack.mosquitto_passwd import write_entry
    from stack.run_as import RunAs
    from tests.conftest import free_port, wait_until

    # The container's paths become folders of this test; the rest of the file is unchanged.
    port = free_port()
    (tmp_path / "data").mkdir()
    text = (MOSQUITTO_CONFIG / "mosquitto.conf").read_text(encoding="utf-8")
    text = text.replace("/mosquitto/data/", f"{tmp_path}/data/")
    text = text.replace("/mosquitto/config/", f"{MOSQUITTO_CONFIG}/")
    text = text.replace("listener 1883", f"listener {port} 127.0.0.1")
    config = tmp_path / "mosquitto.conf"
    config.write_text(text + "user root\n", encoding="utf-8")  # root: do not switch users
    passwd = tmp_path / "data" / "passwd"
    passwd.write_text("")
    log = tmp_path / "log"
    for user in ("energywatch-gateway", "91110000MA01ABCD1X"):
        write_entry(passwd, user, f"{user}-password", run_as=RunAs.current(), log_path=log)
    broker = subprocess.Popen(
        [mosquitto_binary, "-c", str(config)], stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    try:
        wait_until(lambda: broker_answer_or_none(port), 10, what="the broker")
        gateway = broker_answer(
            "127.0.0.1",
            port,
            username="energywatch-gateway",
            password="energywatch-gateway-password",
            subscribe="energywatch/+/readings",
        )
        assert (gateway.logged_in, gateway.subscribed) == (True, True), log.read_text()
        enterprise = broker_answer(
            "127.0.0.1", port, username="91110000MA01ABCD1X", password="91110000MA01ABCD1X-password"
        )
        assert enterprise.logged_in
        assert not broker_answer("127.0.0.1", port).logged_in  # anonymous
    finally:
        broker.terminate()
        broker.wait(10)


def broker_answer_or_none(port: int) -> object:
    from stack.mosquitto import broker_answer
    from stack.service import ProbeFailed

    try:
        return broker_answer("127.0.0.1", port)
    except ProbeFailed:
        return None


# --- Grafana provisioning ----------------------------------------------------------------


def test_grafana_provisions_timescaledb_and_prometheus_datasources(services):
    provisioning = load_yaml(GRAFANA_PROVISIONING / "datasources" / "datasources.yml")
    datasources = {source["uid"]: source for source in provisioning["datasources"]}
    assert set(datasources) == {"timescaledb", "prometheus"}

    timescaledb = datasources["timescaledb"]
    assert timescaledb["type"] == "grafana-postgresql-datasource"
    assert timescaledb["url"] == "timescaledb:5432"
    assert timescaledb["jsonData"]["timescaledb"] is True
    assert timescaledb["jsonData"]["database"] == "energywatch"
    assert datasources["prometheus"]["type"] == "prometheus"
    assert urlsplit(datasources["prometheus"]["url"]).hostname in services


def test_grafana_reads_the_database_password_from_its_own_environment(services):
    provisioning = load_yaml(GRAFANA_PROVISIONING / "datasources" / "datasources.yml")
    timescaledb = next(s for s in provisioning["datasources"] if s["uid"] == "timescaledb")
    reference = timescaledb["secureJsonData"]["password"]
    variable = re.fullmatch(r"\$\{([A-Z0-9_]+)\}", reference)
    assert variable, "the datasource password must be an environment reference"
    assert variable.group(1) in environment(services["grafana"])


def test_grafana_dashboard_provider_reads_the_mounted_dashboards_folder(services):
    provisioning = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "dashboards.yml")
    (provider,) = provisioning["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    assert host_path_for(services["grafana"], path) == REPO_ROOT / "dashboards" / "json"


# --- with Docker Compose itself, where it is installed ------------------------------------


@pytest.fixture(scope="module")
def docker_compose() -> list[str]:
    """The Compose v2 command line, where one is installed (not on the development machines)."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        version = subprocess.run(
            [*command, "version", "--short"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        # Compose v1 (1.x) predates parts of the compose spec this file uses.
        if version.returncode == 0 and not version.stdout.strip().startswith("1."):
            return command
    pytest.skip("Docker Compose v2 is not installed (`docker compose` or `docker-compose`)")


def run_compose_config(
    docker_compose: list[str], tmp_path: Path, secrets: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    # An empty --env-file so a developer's own .env cannot supply the secrets.
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("", encoding="utf-8")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EW_", "GF_", "COMPOSE_"))
    }
    return subprocess.run(
        [
            *docker_compose,
            "--file",
            str(COMPOSE_FILE),
            "--env-file",
            str(empty_env_file),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env={**env, **secrets},
        timeout=60,
        check=False,
    )


def test_docker_compose_accepts_the_file_once_the_passwords_are_set(docker_compose, tmp_path):
    secrets = {
        "EW_POSTGRES_PASSWORD": "compose-test",
        "GF_ADMIN_PASSWORD": "compose-test",
        "EW_MQTT_PASSWORD": "compose-test",
    }
    result = run_compose_config(docker_compose, tmp_path, secrets)
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_the_file_without_the_passwords(docker_compose, tmp_path):
    result = run_compose_config(docker_compose, tmp_path, {})
    assert result.returncode != 0
    assert any(
        f"set {name}" in result.stderr
        for name in ("EW_POSTGRES_PASSWORD", "GF_ADMIN_PASSWORD", "EW_MQTT_PASSWORD")
    )


def test_every_service_that_names_a_file_under_plans_mounts_the_plans_folder(services):
    for name, service in services.items():
        text = json.dumps({k: service.get(k) for k in ("command", "environment")})
        if "/app/plans/" in text:
            assert "./plans:/app/plans:ro" in service.get("volumes", []), name
