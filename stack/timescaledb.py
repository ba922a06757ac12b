"""TimescaleDB (Apache edition) built from Debian trixie's source for PostgreSQL 15."""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

from stack.apt import Apt
from stack.commands import run_step
from stack.errors import StackError
from stack.paths import StackPaths
from stack.progress import Progress

PG_MAJOR = 15
PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
PG_LIB = Path(f"/usr/lib/postgresql/{PG_MAJOR}/lib")
CONTROL_FILE = Path(f"/usr/share/postgresql/{PG_MAJOR}/extension/timescaledb.control")
#: Debian bookworm has no TimescaleDB package; trixie carries its source, which builds here.
SOURCE_SUITE = "trixie"
BUILD_PACKAGES = [
    f"postgresql-{PG_MAJOR}",
    f"postgresql-server-dev-{PG_MAJOR}",
    "cmake",
    "gcc",
    "make",
]


def timescaledb_installed() -> bool:
    return CONTROL_FILE.is_file() and any(PG_LIB.glob("timescaledb*.so"))


def install_timescaledb(paths: StackPaths, apt: Apt, log_path: Path, progress: Progress) -> None:
    """Build and install TimescaleDB's Apache-licensed part; a no-op when it is installed."""
    if timescaledb_installed():
        return
    apt.ensure(BUILD_PACKAGES)
    tarball = _source_tarball(paths, apt)
    progress(f"building TimescaleDB from {tarball.name}")
    with tempfile.TemporaryDirectory(dir=paths.cache, prefix=".timescaledb-build-") as work:
        root = Path(work)
        with tarfile.open(tarball) as archive:
            archive.extractall(root, filter="data")
        (source,) = [p for p in root.iterdir() if p.is_dir()]
        build = source / "build"
        run_step(
            [
                "cmake", "-S", str(source), "-B", str(build),
                f"-DPG_CONFIG={PG_BIN / 'pg_config'}",
                "-DAPACHE_ONLY=1",
                "-DREGRESS_CHECKS=OFF", "-DTAP_CHECKS=OFF",
                "-DSEND_TELEMETRY_DEFAULT=OFF", "-DUSE_TELEMETRY=OFF",
                "-DWARNINGS_AS_ERRORS=OFF",
            ],
            step="cmake (TimescaleDB)",
            log_path=log_path,
            cwd=source,
        )  # fmt: skip
        jobs = str(os.cpu_count() or 2)
        run_step(
            ["make", "-C", str(build), f"-j{jobs}"], step="make (TimescaleDB)", log_path=log_path
        )
        progress("installing TimescaleDB into PostgreSQL 15")
        run_step(
            ["make", "-C", str(build), "install"],
            step="make install (TimescaleDB)",
            log_path=log_path,
        )
    if not timescaledb_installed():
        raise StackError(f"TimescaleDB built but {CONTROL_FILE} is missing; read {log_path}")


def _source_tarball(paths: StackPaths, apt: Apt) -> Path:
    """The upstream tarball from the cache, downloaded with ``apt-get source`` when absent."""
    sources = paths.cache / "timescaledb-src"
    found = _newest(sources)
    if found is None:
        # The suite's package lists (~20 MB) are needed only for this one download.
        with tempfile.TemporaryDirectory(dir=paths.cache, prefix=".apt-") as state:
            apt.download_source("timescaledb", SOURCE_SUITE, sources, Path(state))
        found = _newest(sources)
    if found is None:
        raise StackError(f"apt-get source timescaledb/{SOURCE_SUITE} left no tarball in {sources}")
    return found


def _newest(folder: Path) -> Path | None:
    tarballs = sorted(folder.glob("timescaledb_*.orig.tar.*"), key=lambda p: p.stat().st_mtime)
    return tarballs[-1] if tarballs else None
