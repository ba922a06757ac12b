"""Debian packages: install what is missing, fetch a source package from another suite."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from stack.commands import run_step
from stack.errors import StackError
from stack.processes import child_env
from stack.progress import Progress

_APT_ETC = Path("/etc/apt")
#: Wait for another apt or dpkg run to finish instead of failing at once.
_WAIT_FOR_LOCK = ["-o", "DPkg::Lock::Timeout=600"]


class Apt:
    """apt-get with one ``update`` per instance, run only when something must be installed."""

    def __init__(self, log_path: Path, progress: Progress) -> None:
        self._log = log_path
        self._progress = progress
        self._updated = False

    @staticmethod
    def is_installed(package: str) -> bool:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Status}", package],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.returncode == 0 and result.stdout.strip() == "installed"

    def ensure(self, packages: list[str], *, recommends: bool = True) -> None:
        """Install those of ``packages`` that are missing."""
        missing = [p for p in packages if not self.is_installed(p)]
        if not missing:
            return
        if os.geteuid() != 0:
            raise StackError(
                f"missing Debian packages {' '.join(missing)}: install them as root "
                f"(`sudo apt-get install -y {' '.join(missing)}`), then run `energywatch stack up`"
            )
        env = child_env(DEBIAN_FRONTEND="noninteractive")
        if not self._updated:
            self._progress("apt-get update")
            run_step(
                ["apt-get", *_WAIT_FOR_LOCK, "update"],
                step="apt-get update",
                log_path=self._log,
                env=env,
            )
            self._updated = True
        self._progress(f"apt-get install {' '.join(missing)}")
        extra = [] if recommends else ["--no-install-recommends"]
        run_step(
            ["apt-get", *_WAIT_FOR_LOCK, "install", "-y", *extra, *missing],
            step=f"apt-get install {' '.join(missing)}",
            log_path=self._log,
            env=env,
        )

    def download_source(self, package: str, suite: str, dest: Path, state: Path) -> None:
        """Download the source package ``package/suite`` into ``dest``.

        Uses a private sources list (deb-src for ``suite`` on the machine's own Debian
        mirror) and private lists and caches under ``state``, so the system's apt
        configuration and package cache are left exactly as they were.
        """
        mirror = debian_mirror()
        lists, cache = state / "lists", state / "cache"
        for folder in (lists / "partial", cache / "archives" / "partial", dest):
            folder.mkdir(parents=True, exist_ok=True)
        sources = state / "sources.list"
        sources.write_text(f"deb-src {mirror} {suite} main\n")
        options = [
            "-o", f"Dir::Etc::sourcelist={sources}",
            "-o", "Dir::Etc::sourceparts=-",
            "-o", f"Dir::State::Lists={lists}",
            "-o", f"Dir::Cache={cache}",
            "-o", "APT::Get::List-Cleanup=0",
        ]  # fmt: skip
        if os.geteuid() == 0:
            # The _apt sandbox user cannot write into our cache folder.
            options += ["-o", "APT::Sandbox::User=root"]
        env = child_env(DEBIAN_FRONTEND="noninteractive")
        self._progress(f"apt-get update (deb-src {suite})")
        run_step(
            ["apt-get", *options, "update"],
            step=f"apt-get update for deb-src {suite}",
            log_path=self._log,
            env=env,
        )
        self._progress(f"apt-get source {package}/{suite}")
        run_step(
            ["apt-get", *options, "source", "--download-only", f"{package}/{suite}"],
            step=f"apt-get source {package}/{suite}",
            log_path=self._log,
            cwd=dest,
            env=env,
        )


def debian_mirror(etc_apt: Path = _APT_ETC) -> str:
    """The URI of the Debian archive this machine's apt configuration uses.

    The entry whose suite is the release's own codename is the main archive (security
    and updates use other suites).
    """
    codename = _codename()
    for types, uris, suites in _entries(etc_apt):
        if "deb" in types and codename in suites and uris:
            return uris[0]
    raise StackError(
        f"no Debian archive for '{codename}' in {etc_apt}/sources.list(.d): "
        "cannot fetch the TimescaleDB source package"
    )


def _codename() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME":
            return value.strip().strip('"')
    raise StackError("/etc/os-release names no VERSION_CODENAME: is this Debian?")


Entry = tuple[list[str], list[str], list[str]]


def _entries(etc_apt: Path) -> Iterator[Entry]:
    one_line = [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if path.is_file():
            yield from one_line_entries(path.read_text())
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        yield from deb822_entries(path.read_text())


def one_line_entries(text: str) -> Iterator[Entry]:
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 3:
            continue
        if words[1].startswith("["):  # options such as [signed-by=...]
            while words and not words[1].endswith("]"):
                del words[1]
            del words[1]
        if len(words) >= 3:
            yield [words[0]], [words[1]], [words[2]]


def deb822_entries(text: str) -> Iterator[Entry]:
    for stanza in text.split("\n\n"):
        fields: dict[str, list[str]] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.split()
        if fields.get("enabled", ["yes"])[0].lower() == "no":
            continue
        yield fields.get("types", []), fields.get("uris", []), fields.get("suites", [])
