"""The life cycle every local service shares: configure, start detached, probe, stop."""

from __future__ import annotations

import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from stack.errors import StackError
from stack.paths import StackPaths, shown
from stack.ports import port_open
from stack.processes import (
    PidFile,
    child_env,
    describe_dead,
    is_alive,
    log_tail,
    start_detached,
    stop,
)
from stack.progress import Progress
from stack.run_as import RunAs
from stack.service_status import ServiceStatus
from stack.settings import StackSettings

NOT_INSTALLED = "not installed: run `energywatch stack up`"


class ProbeFailed(Exception):
    """A health probe got no good answer; the message is the reason to report."""


class DetachedService(ABC):
    """A server process started in its own session, with a pid file and a log under home."""

    name: str
    #: The text that must appear in the process's command line (guards against pid reuse).
    marker: str
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 30.0
    start_timeout_s: float = 90.0

    def __init__(self, settings: StackSettings, paths: StackPaths) -> None:
        self.settings = settings
        self.paths = paths
        self.dir = paths.service_dir(self.name)
        self.log_path = paths.log(self.name)
        self.pid_file = PidFile(self.dir / f"{self.name}.pid", self.marker)

    # --- what each service defines -------------------------------------------------

    @property
    @abstractmethod
    def ports(self) -> tuple[int, ...]:
        """The ports the service listens on; the first one is its endpoint."""

    @property
    def endpoint(self) -> str:
        return f"{self.settings.host}:{self.ports[0]}"

    @abstractmethod
    def installed(self) -> bool:
        """Whether everything the service needs is on disk (a cheap check)."""

    @abstractmethod
    def install(self, progress: Progress) -> None:
        """Download, build and initialise what is missing; a no-op when installed."""

    @abstractmethod
    def configure(self) -> bool:
        """(Re)write the configuration files; return whether any of them changed."""

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that runs the server in the foreground."""

    @abstractmethod
    def probe(self) -> str:
        """A short description when the service answers as it should; else raise ProbeFailed."""

    def probe_ready(self) -> None:
        """Whether the server accepts requests at all (before ``after_ready`` runs)."""
        self.probe()

    def after_ready(self, progress: Progress) -> None:  # noqa: B027 (optional hook)
        """Work that needs the running server (accounts, databases); idempotent."""

    def before_start(self, progress: Progress) -> None:  # noqa: B027 (optional hook)
        """Checks to run before the server starts (for example validating its config)."""

    def run_as(self) -> RunAs | None:
        return None

    def env(self) -> dict[str, str]:
        return child_env()

    # --- the shared life cycle ----------------------------------------------------

    def status(self) -> ServiceStatus:
        if not self.installed():
            return self._status(False, NOT_INSTALLED)
        pid = self.pid_file.running_pid()
        if pid is None:
            held = [p for p in self.ports if port_open(self.settings.host, p)]
            if held:
                return self._status(False, f"port {held[0]} held by another process")
            return self._status(False, describe_dead(self.pid_file, self.log_path))
        try:
            return self._status(True, f"pid {pid}, {self.probe()}")
        except ProbeFailed as failure:
            return self._status(False, f"pid {pid}: {failure}")

    def ensure_running(self, progress: Progress) -> ServiceStatus:
        """Start the service unless it already runs healthy; restart it when its config changed."""
        changed = self.configure()
        pid = self.pid_file.running_pid()
        if pid is not None and changed:
            progress(f"{self.name}: configuration changed, restarting")
            self.stop()
            pid = None
        if pid is not None:
            try:
                return self._status(True, f"pid {pid}, {self.probe()}")
            except ProbeFailed:
                pass  # still starting, or needs after_ready: handled below
        else:
            self._check_ports_free()
            self.before_start(progress)
            progress(f"starting {self.name}")
            pid = start_detached(
                self.command(),
                pid_file=self.pid_file,
                log_path=self.log_path,
                cwd=self.dir,
                env=self.env(),
                run_as=self.run_as(),
            )
        progress(f"waiting for {self.name} (pid {pid})")
        self._wait(self.probe_ready, pid)
        self.after_ready(progress)
        try:
            return self._status(True, f"pid {pid}, {self.probe()}")
        except ProbeFailed as failure:
            raise StackError(
                f"{self.name} (pid {pid}) runs but is not healthy: {failure}; "
                f"log: {shown(self.log_path)}"
            ) from failure

    def stop(self) -> ServiceStatus:
        pid = stop(self.pid_file, sig=self.stop_signal, timeout_s=self.stop_timeout_s)
        detail = f"stopped (was pid {pid})" if pid is not None else "not running"
        return self._status(False, detail)

    def _wait(self, check: Callable[[], object], pid: int) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        reason = "no answer yet"
        while time.monotonic() < deadline:
            if not is_alive(pid):
                raise StackError(
                    f"{self.name} (pid {pid}) exited while starting; read {shown(self.log_path)}:\n"
                    f"{log_tail(self.log_path)}"
                )
            try:
                check()
                return
            except ProbeFailed as failure:
                reason = str(failure)
            time.sleep(0.25)
        raise StackError(
            f"{self.name} (pid {pid}) not ready within {self.start_timeout_s:.0f}s: {reason}; "
            f"read {shown(self.log_path)}, then `energywatch stack down` and `up` again"
        )

    def _check_ports_free(self) -> None:
        for port in self.ports:
            if port_open(self.settings.host, port):
                raise StackError(
                    f"{self.name}: port {port} held by another process; stop that process "
                    f"or choose another port (EW_STACK_* settings), then `energywatch stack up`"
                )

    def _status(self, healthy: bool, detail: str) -> ServiceStatus:
        return ServiceStatus(
            name=self.name, healthy=healthy, detail=detail, endpoint=self.endpoint_url
        )

    @property
    def endpoint_url(self) -> str:
        """The endpoint as clients write it (a URL where the protocol has one)."""
        return self.endpoint

    def ensure_dir(self, path: Path, mode: int = 0o755) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        return path
