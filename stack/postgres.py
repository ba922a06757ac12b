"""PostgreSQL 15 with TimescaleDB: a cluster of the project's own under home."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from stack.apt import Apt
from stack.commands import run_step
from stack.errors import StackError
from stack.files import write_atomic
from stack.password import postgres_password
from stack.paths import StackPaths, shown
from stack.postgres_admin import DATABASE, ROLE, admin_connection, ensure_account
from stack.progress import Progress
from stack.run_as import RunAs
from stack.service import DetachedService, ProbeFailed
from stack.settings import StackSettings
from stack.templates import render
from stack.timescaledb import PG_BIN, install_timescaledb, timescaledb_installed

_INCLUDE = "include = 'energywatch.conf'"


class Postgres(DetachedService):
    name = "postgres"
    marker = str(PG_BIN / "postgres")
    # SIGINT is PostgreSQL's fast shutdown; SIGTERM (smart) would wait for every client.
    stop_signal = signal.SIGINT

    def __init__(self, settings: StackSettings, paths: StackPaths, apt: Apt) -> None:
        super().__init__(settings, paths)
        self.apt = apt
        self.data = self.dir / "data"
        self.socket_dir = self.dir / "run"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.postgres_port,)

    @property
    def endpoint_url(self) -> str:
        return f"postgresql://{ROLE}@{self.endpoint}/{DATABASE}"

    def run_as(self) -> RunAs:
        # PostgreSQL refuses to run as root; root runs it as the Debian package's user.
        return RunAs.named("postgres") if os.geteuid() == 0 else RunAs.current()

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.run_as().home),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }

    def installed(self) -> bool:
        return (
            (PG_BIN / "postgres").is_file()
            and timescaledb_installed()
            and (self.data / "PG_VERSION").is_file()
        )

    def install(self, progress: Progress) -> None:
        if self.installed():
            return
        install_timescaledb(self.paths, self.apt, self.paths.log("install"), progress)
        user = self.run_as()
        self.ensure_dir(self.dir, 0o700)
        user.chown(self.dir)
        _check_reachable(self.dir, user)
        if not (self.data / "PG_VERSION").is_file():
            if self.data.exists():
                # Without PG_VERSION this is the debris of an interrupted initdb, not a cluster.
                shutil.rmtree(self.data)
            progress("initialising the PostgreSQL cluster")
            run_step(
                [
                    str(PG_BIN / "initdb"), "-D", str(self.data), "--username=postgres",
                    "--auth-local=peer", "--auth-host=scram-sha-256",
                    "--encoding=UTF8", "--locale=C.UTF-8", "--data-checksums",
                ],
                step="initdb",
                log_path=self.paths.log("install"),
                cwd=self.dir,
                env=self.env(),
                run_as=user,
            )  # fmt: skip

    def configure(self) -> bool:
        user = self.run_as()
        self.ensure_dir(self.socket_dir, 0o700)
        user.chown(self.socket_dir)
        admin = RunAs.current().name
        files = {
            "energywatch.conf": render(
                "postgresql.conf",
                host=self.settings.host,
                port=self.settings.postgres_port,
                socket_dir=self.socket_dir,
            ),
            "pg_hba.conf": render("pg_hba.conf"),
            "pg_ident.conf": render("pg_ident.conf", admin_user=admin, server_user=user.name),
        }
        changed = False
        for name, text in files.items():
            changed = write_atomic(self.data / name, text, mode=0o600, owner=user) or changed
        main_conf = self.data / "postgresql.conf"
        if _INCLUDE not in main_conf.read_text():
            with main_conf.open("a") as handle:
                handle.write(f"\n# the energywatch stack's settings\n{_INCLUDE}\n")
            changed = True
        return changed

    def command(self) -> list[str]:
        return [str(PG_BIN / "postgres"), "-D", str(self.data)]

    def probe_ready(self) -> None:
        import psycopg  # imported on use: it is slow to import

        try:
            with admin_connection(self.socket_dir, self.settings.postgres_port) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            raise ProbeFailed(f"no answer on {shown(self.socket_dir)}: {error}") from error

    def after_ready(self, progress: Progress) -> None:
        password = postgres_password(self.settings, self.paths, create=True)
        assert password is not None  # create=True always yields one
        progress("creating role and database energywatch")
        ensure_account(self.socket_dir, self.settings.postgres_port, password)

    def probe(self) -> str:
        import psycopg

        password = postgres_password(self.settings, self.paths, create=False)
        if password is None:
            raise ProbeFailed(
                f"no password in {shown(self.paths.postgres_password_file)} "
                "or EW_STACK_POSTGRES_PASSWORD: run `energywatch stack up`"
            )
        try:
            with psycopg.connect(
                host=self.settings.host,
                port=self.settings.postgres_port,
                user=ROLE,
                dbname=DATABASE,
                password=password.get_secret_value(),
                connect_timeout=5,
            ) as conn:
                row = conn.execute(
                    "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
                ).fetchone()
                license_row = conn.execute("SHOW timescaledb.license").fetchone()
                server = conn.info.server_version
        except psycopg.Error as error:
            raise ProbeFailed(
                f"cannot log in as {ROLE} on port {self.ports[0]}: {error}"
            ) from error
        if row is None:
            raise ProbeFailed(f"database {DATABASE} has no timescaledb extension")
        license_name = license_row[0] if license_row else "unknown"
        major, minor = divmod(server, 10000)
        return f"PostgreSQL {major}.{minor}, timescaledb {row[0]} ({license_name})"


def _check_reachable(folder: Path, user: RunAs) -> None:
    """Fail early, with the folder to fix, when ``user`` cannot enter ``folder``."""
    if not user.is_other_user:
        return
    for ancestor in [*reversed(folder.parents), folder]:
        result = subprocess.run(
            ["test", "-x", str(ancestor)],
            user=user.uid,
            group=user.gid,
            extra_groups=list(user.groups),
            check=False,
        )
        if result.returncode != 0:
            raise StackError(
                f"the '{user.name}' user cannot enter {ancestor}, so PostgreSQL cannot reach "
                f"{folder}: `chmod o+x {ancestor}`, or set EW_STACK_HOME to a folder it can reach"
            )
