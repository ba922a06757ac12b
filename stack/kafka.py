"""Apache Kafka in KRaft mode: one combined broker and controller on loopback."""

from __future__ import annotations

import base64
import shutil
import uuid
from pathlib import Path

from stack import kafka_jars
from stack.apt import Apt
from stack.commands import run_step
from stack.files import write_atomic
from stack.paths import StackPaths
from stack.ports import port_open
from stack.progress import Progress
from stack.service import DetachedService, ProbeFailed
from stack.settings import StackSettings
from stack.templates import render

PROBE_TIMEOUT_S = 5.0


class Kafka(DetachedService):
    name = "kafka"
    marker = "kafka.Kafka"
    stop_timeout_s = 45.0

    def __init__(self, settings: StackSettings, paths: StackPaths, apt: Apt) -> None:
        super().__init__(settings, paths)
        self.apt = apt
        self.data = self.dir / "data"
        self.properties = self.dir / "server.properties"
        self.log4j = self.dir / "log4j.properties"
        self.cluster_id_file = self.dir / "cluster.id"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.kafka_port, self.settings.kafka_controller_port)

    @property
    def libs(self) -> Path:
        return kafka_jars.libs_dir(self.paths, self.settings.kafka_version)

    def installed(self) -> bool:
        return (
            kafka_jars.jars_ready(self.paths, self.settings.kafka_version)
            and (self.data / "meta.properties").is_file()
        )

    def install(self, progress: Progress) -> None:
        if self.installed():
            return
        if shutil.which("java") is None:
            self.apt.ensure(["openjdk-17-jre-headless"])
        if shutil.which("mvn") is None:
            self.apt.ensure(["maven"])
        kafka_jars.fetch_jars(
            self.paths, self.settings.kafka_version, self.paths.log("install"), progress
        )
        self.configure()
        if not (self.data / "meta.properties").is_file():
            progress("formatting Kafka's KRaft storage")
            run_step(
                [
                    *self._java(), "kafka.tools.StorageTool", "format",
                    "-t", self._cluster_id(), "-c", str(self.properties), "--ignore-formatted",
                ],
                step="kafka-storage format",
                log_path=self.paths.log("install"),
                cwd=self.dir,
            )  # fmt: skip

    def configure(self) -> bool:
        self.ensure_dir(self.data)
        host = self.settings.host
        server = render(
            "server.properties",
            host=host,
            port=self.settings.kafka_port,
            controller_port=self.settings.kafka_controller_port,
            log_dirs=self.data,
        )
        changed = write_atomic(self.properties, server)
        return write_atomic(self.log4j, render("log4j.properties")) or changed

    def command(self) -> list[str]:
        return [*self._java(heap=True), "kafka.Kafka", str(self.properties)]

    def probe(self) -> str:
        port = self.settings.kafka_port
        if not port_open(self.settings.host, port):
            raise ProbeFailed(f"port {port} is not open")
        try:
            topics = list_topics(self.endpoint, timeout_s=PROBE_TIMEOUT_S)
        except Exception as error:  # kafka-python raises many unrelated types
            raise ProbeFailed(
                f"port {port} open but no metadata answer within {PROBE_TIMEOUT_S:.0f}s: {error}"
            ) from error
        return f"Kafka {self.settings.kafka_version} (KRaft), {len(topics)} topics"

    def _java(self, *, heap: bool = False) -> list[str]:
        options = ["-Xmx512m", "-Xms256m", "-XX:+UseG1GC"] if heap else []
        return [
            "java",
            *options,
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.log4j}",
            "-cp",
            str(self.libs / "*"),
        ]

    def _cluster_id(self) -> str:
        if self.cluster_id_file.is_file():
            return self.cluster_id_file.read_text().strip()
        cluster_id = new_cluster_id()
        write_atomic(self.cluster_id_file, cluster_id + "\n")
        return cluster_id


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    This is what ``kafka-storage random-uuid`` prints (it avoids a leading '-', which
    command lines would read as an option), without starting a JVM for it.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def list_topics(bootstrap: str, *, timeout_s: float) -> list[str]:
    """The broker's topic names, from a metadata request."""
    from kafka import KafkaAdminClient  # imported on use: it is slow to import

    timeout_ms = int(timeout_s * 1000)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="energywatch-stack",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )
    try:
        topics: list[str] = list(admin.list_topics())
    finally:
        admin.close()
    return topics
