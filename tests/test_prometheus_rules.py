"""The pipeline's alerting rules (``deploy/prometheus/rules``): valid, unit-tested with
``promtool test rules`` (every alert firing and not firing), built on series the services
really create, documented, and loaded by both the docker-compose and the local Prometheus."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stack import prometheus as stack_prometheus
from stack.apt import Apt
from stack.paths import StackPaths
from stack.prometheus import Prometheus
from stack.settings import StackSettings
from tests.conftest import free_port
from tests.test_metrics_registry import every_series_name

REPO_ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
UNIT_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
README = PROMETHEUS_DIR / "README.md"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not on PATH (apt-get install -y prometheus provides it)")
    return path


def run_promtool(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def alerting_rules() -> dict[str, dict[str, Any]]:
    return {
        rule["alert"]: rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def rule_test_cases() -> list[dict[str, Any]]:
    return [
        case
        for path in UNIT_TESTS
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_promtool_accepts_every_rule_file(promtool):
    assert RULE_FILES
    for path in RULE_FILES:
        result = run_promtool(promtool, "check", "rules", path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_the_rules_pass(promtool):
    assert UNIT_TESTS
    result = run_promtool(promtool, "test", "rules", *UNIT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_both_firing_and_quiet():
    cases = rule_test_cases()
    for name in alerting_rules():
        outcomes = [bool(c["exp_alerts"]) for c in cases if c["alertname"] == name]
        assert True in outcomes, f"{name}: no case in which it fires"
        assert False in outcomes, f"{name}: no case in which it stays quiet"


def test_the_unit_tests_catch_a_rule_that_waits_too_long(promtool, tmp_path):
    # the same tests against rules where the worker must be down ten minutes, not one
    rules = tmp_path / "rules"
    rules.mkdir()
    for path in RULE_FILES:
        text = path.read_text(encoding="utf-8")
        text = text.replace(
            'expr: up{job="energywatch", component="worker"} == 0\n        for: 1m',
            'expr: up{job="energywatch", component="worker"} == 0\n        for: 10m',
        )
        (rules / path.name).write_text(text, encoding="utf-8")
    tests = tmp_path / "tests"
    tests.mkdir()
    for path in UNIT_TESTS:
        shutil.copy(path, tests / path.name)
    result = run_promtool(promtool, "test", "rules", *sorted(tests.glob("*.yml")))
    assert result.returncode != 0
    assert "EnergyWatchWorkerDown" in result.stdout + result.stderr


def test_every_alert_says_how_bad_what_happened_and_where_its_runbook_is():
    readme = README.read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in readme.splitlines()
        if line.startswith("#")
    }
    for name, rule in alerting_rules().items():
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: no `for`"
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        annotations = rule["annotations"]
        assert annotations["summary"], name
        assert annotations["description"], name
        document, _, anchor = annotations["runbook"].partition("#")
        assert document == "deploy/prometheus/README.md", name
        assert anchor == name.lower(), name
        assert anchor in anchors, f"{name}: no runbook section"


def test_the_rules_use_only_series_the_services_create():
    created = every_series_name()
    for name, rule in alerting_rules().items():
        used = set(re.findall(r"\benergywatch_[a-z0-9_]+", rule["expr"]))
        assert used or rule["expr"].startswith("up{"), name
        assert used <= created, f"{name} uses series no service creates: {used - created}"


def test_the_compose_prometheus_loads_every_rule_file(promtool):
    result = run_promtool(promtool, "check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    for path in RULE_FILES:
        assert str(path.relative_to(PROMETHEUS_DIR)) in result.stdout + result.stderr


def test_the_local_stack_s_prometheus_loads_the_same_rules(promtool, tmp_path):
    settings = StackSettings(home=tmp_path / "local", cache_dir=tmp_path / "cache")
    paths = StackPaths.of(settings)
    prometheus = Prometheus(settings, paths, Apt(paths.log("install"), print))
    assert prometheus.configure() is True
    copied = sorted(prometheus.rules.glob("*.yml"))
    assert [p.name for p in copied] == [p.name for p in RULE_FILES]
    for mine, theirs in zip(copied, RULE_FILES, strict=True):
        assert mine.read_bytes() == theirs.read_bytes()
    result = run_promtool(promtool, "check", "config", prometheus.config)
    assert result.returncode == 0, result.stdout + result.stderr
    total = sum(len(group["rules"]) for group in loaded_groups(RULE_FILES))
    assert f"SUCCESS: {total} rules found" in result.stdout
    # nothing changed since: no restart on the next `stack up`
    assert prometheus.configure() is False


def test_a_rule_file_removed_from_the_repo_leaves_the_local_stack_too(tmp_path):
    settings = StackSettings(home=tmp_path / "local", cache_dir=tmp_path / "cache")
    paths = StackPaths.of(settings)
    prometheus = Prometheus(settings, paths, Apt(paths.log("install"), print))
    prometheus.configure()
    stale = prometheus.rules / "removed.yml"
    stale.write_text("groups: []\n", encoding="utf-8")
    assert prometheus.configure() is True
    assert not stale.exists()


def loaded_groups(paths: list[Path]) -> list[dict[str, Any]]:
    return [
        group
        for path in paths
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    ]


@pytest.mark.services
def test_a_new_rule_file_restarts_the_local_prometheus_with_it(promtool, tmp_path, monkeypatch):
    """A Prometheus of this test's own (own home, own port), started the way `stack up` does."""
    source = tmp_path / "rules"
    source.mkdir()
    for path in RULE_FILES:
        shutil.copy(path, source / path.name)
    monkeypatch.setattr(stack_prometheus, "RULES_SOURCE", source)
    settings = StackSettings(
        home=tmp_path / "local", cache_dir=tmp_path / "cache", prometheus_port=free_port()
    )
    paths = StackPaths.of(settings)
    prometheus = Prometheus(settings, paths, Apt(paths.log("install"), print))

    def up() -> tuple[int | None, set[str]]:
        prometheus.install(print)
        prometheus.ensure_running(print)
        url = f"{prometheus.endpoint_url}/api/v1/rules"
        groups = httpx.get(url, timeout=5).json()["data"]["groups"]
        return prometheus.pid_file.running_pid(), {group["name"] for group in groups}

    try:
        first_pid, groups = up()
        assert groups == {group["name"] for group in loaded_groups(RULE_FILES)}
        assert up()[0] == first_pid  # nothing changed: left running
        (source / "extra.yml").write_text(
            "groups:\n  - name: extra\n    rules:\n"
            "      - alert: Extra\n        expr: vector(1)\n        for: 1m\n",
            encoding="utf-8",
        )
        second_pid, groups = up()
        assert second_pid != first_pid
        assert "extra" in groups
    finally:
        prometheus.stop()
