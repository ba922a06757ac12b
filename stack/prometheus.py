"""Prometheus with the project's own configuration, data and port (not Debian's service).

It loads the same alerting rules as the docker-compose stack: ``deploy/prometheus/rules/*.yml``
are copied next to the generated configuration, so a changed rule restarts Prometheus on the
next ``energywatch stack up`` like a changed configuration does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from stack.apt import Apt
from stack.commands import run_step
from stack.files import write_atomic
from stack.paths import StackPaths
from stack.progress import Progress
from stack.service import DetachedService, ProbeFailed
from stack.settings import REPO_ROOT, StackSettings
from stack.templates import render

PROBE_TIMEOUT_S = 5.0
#: the pipeline's alerting rules, shared with docker-compose's Prometheus
RULES_SOURCE = REPO_ROOT / "deploy" / "prometheus" / "rules"


class Prometheus(DetachedService):
    name = "prometheus"
    marker = "prometheus"
    stop_timeout_s = 20.0

    def __init__(self, settings: StackSettings, paths: StackPaths, apt: Apt) -> None:
        super().__init__(settings, paths)
        self.apt = apt
        self.config = self.dir / "prometheus.yml"
        self.data = self.dir / "data"
        self.targets = paths.prometheus_targets
        self.rules = self.dir / "rules"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.prometheus_port,)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.endpoint}"

    def installed(self) -> bool:
        return _binary("prometheus") is not None and self.config.is_file()

    def install(self, progress: Progress) -> None:
        if _binary("prometheus") is None or _binary("promtool") is None:
            # Debian's package may start its own service on :9090; it is not the one we use.
            self.apt.ensure(["prometheus"], recommends=False)
        # not configured here: ensure_running does it, and restarts Prometheus when the
        # configuration or a rule file changed (writing it here first would hide the change)

    def configure(self) -> bool:
        for folder in (self.dir, self.data, self.targets, self.rules):
            self.ensure_dir(folder)
        text = render(
            "prometheus.yml",
            self_target=self.endpoint,
            targets_dir=self.targets,
        )
        rules_changed = copy_rules(RULES_SOURCE, self.rules)
        return write_atomic(self.config, text) or rules_changed

    def before_start(self, progress: Progress) -> None:
        progress("promtool check config")
        check_config(self.config, self.paths.log("install"))

    def command(self) -> list[str]:
        return [
            _binary("prometheus") or "prometheus",
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.data}",
            "--storage.tsdb.retention.time=15d",
            f"--web.listen-address={self.endpoint}",
        ]

    def probe(self) -> str:
        import httpx  # imported on use: it is slow to import

        url = f"{self.endpoint_url}/-/ready"
        try:
            response = httpx.get(url, timeout=PROBE_TIMEOUT_S)
        except httpx.HTTPError as error:
            raise ProbeFailed(f"no answer from {url}: {error}") from error
        if response.status_code != httpx.codes.OK:
            raise ProbeFailed(f"{url} answered {response.status_code}: {response.text.strip()}")
        return "ready"


def copy_rules(source: Path, target: Path) -> bool:
    """Make ``target`` hold exactly the ``*.yml`` rule files of ``source``; return whether
    anything changed."""
    wanted = {path.name: path.read_text() for path in sorted(source.glob("*.yml"))}
    changed = False
    for stale in target.glob("*.yml"):
        if stale.name not in wanted:
            stale.unlink()
            changed = True
    for name, text in wanted.items():
        changed = write_atomic(target / name, text) or changed
    return changed


def check_config(config: Path, log_path: Path) -> str:
    """Validate a Prometheus configuration with ``promtool check config``; return its report."""
    return run_step(
        [_binary("promtool") or "promtool", "check", "config", str(config)],
        step="promtool check config",
        log_path=log_path,
    )


def _binary(name: str) -> str | None:
    return shutil.which(name)
