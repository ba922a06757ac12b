"""The Kafka broker's jars: fetched once from Maven with our pom, cached per version."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from stack.commands import run_step
from stack.paths import StackPaths
from stack.progress import Progress
from stack.templates import packaged_text

_COMPLETE = ".complete"


def libs_dir(paths: StackPaths, version: str) -> Path:
    """``<cache>/kafka-<version>/libs``: shared by every clone on this machine."""
    return paths.cache / f"kafka-{version}" / "libs"


def jars_ready(paths: StackPaths, version: str) -> bool:
    return (libs_dir(paths, version) / _COMPLETE).is_file()


def fetch_jars(paths: StackPaths, version: str, log_path: Path, progress: Progress) -> Path:
    """Copy ``kafka_2.13:<version>`` and its runtime dependencies into the cache.

    The jars land in a temporary folder first and are renamed into place, so an
    interrupted download never looks like a complete one.
    """
    target = libs_dir(paths, version)
    if jars_ready(paths, version):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    progress(f"downloading Kafka {version} jars with Maven")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as work:
        project = Path(work)
        (project / "pom.xml").write_text(packaged_text("maven", "pom.xml"))
        run_step(
            [
                "mvn", "-B", "-q", "-f", str(project / "pom.xml"),
                f"-Dkafka.version={version}",
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={project / 'libs'}",
            ],
            step=f"mvn copy-dependencies (Kafka {version})",
            log_path=log_path,
            cwd=project,
        )  # fmt: skip
        (project / "libs" / _COMPLETE).write_text(f"kafka_2.13 {version}\n")
        if target.exists():
            shutil.rmtree(target)
        (project / "libs").rename(target)
    return target
