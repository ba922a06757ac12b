"""The one settings object of every EnergyWatch process.

Built once in ``main()`` from the environment (prefix ``EW_``) and from ``.local/stack.env``,
which ``energywatch stack up`` writes with the local services' endpoints; then passed down.
Secrets are ``SecretStr`` and never printed.
"""

import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_env_file() -> Path:
    """Where ``stack up`` leaves the endpoints: ``$EW_STACK_HOME/stack.env`` or ``.local/``."""
    home = os.environ.get("EW_STACK_HOME")
    return (Path(home) if home else REPO_ROOT / ".local") / "stack.env"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EW_", extra="ignore", frozen=True)

    # Where things are
    kafka_bootstrap: str = "127.0.0.1:39092"
    database_url: SecretStr = SecretStr("postgresql://energywatch@127.0.0.1:35432/energywatch")
    prometheus_url: str = "http://127.0.0.1:39090"
    prometheus_targets_dir: Path | None = None

    # Topics (the contract's wire versions are in the names)
    readings_topic: str = "energywatch.readings.v1"
    alerts_topic: str = "energywatch.alerts.v2"
    dead_letter_topic: str = "energywatch.dead-letters.v1"
    production_topic: str = "energywatch.production.v1"
    voc_topic: str = "energywatch.voc.v1"
    topic_partitions: int = Field(
        default=6,
        ge=1,
        description="partitions of each keyed topic (set when a topic is created; existing "
        "topics keep theirs). Six deal evenly to two readings lanes, or to two or three "
        "workers: with three, one lane of two had twice the other's work (7,476 vs 6,027 "
        "readings/s in the stream benchmark)",
    )

    # Stream worker
    worker_app_id: str = "energywatch-worker"
    worker_data_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "energywatch-faust",
        description="Faust's data directory (the worker keeps no tables in it; it must exist)",
    )
    worker_batch_size: int = Field(default=30000, ge=1)
    worker_lanes: int = Field(
        default=2,
        ge=1,
        le=16,
        description="readings batches a worker makes durable at once, each on its own "
        "partitions and database connection (one's accounting overlaps another's writes)",
    )
    worker_batch_seconds: float = Field(default=0.5, gt=0)
    worker_commit_interval_seconds: float = Field(default=1.0, gt=0)
    worker_session_timeout_seconds: float = Field(
        default=10.0,
        ge=6,
        description="how soon a crashed worker's partitions move to another (Kafka's minimum is 6)",
    )
    compress_after_days: float = Field(
        default=30,
        gt=0,
        description="compress raw chunks older than this (editions with compression only); "
        "must exceed the allowed lateness",
    )
    raw_retention_days: float | None = Field(
        default=None, gt=0, description="drop raw rows older than this; unset keeps them"
    )
    register_path: Path | None = Field(
        default=None,
        description="the enterprise register (plans/registers/*.yaml): counties, cities, "
        "industries and excluded meters for the rollups; without one, every unit is "
        "counted as 'unregistered' in the regional rollups",
    )
    allowed_lateness_seconds: float = Field(
        default=7 * 86_400,
        ge=0,
        description="readings this far behind a partition's watermark still correct the rollups",
    )
    watermark_grace_seconds: float = Field(
        default=1800, ge=0, description="how far the watermark trails the latest interval end"
    )

    # Alert evaluator (alerts/evaluator.py): rules over stored data, the lifecycle, the outbox
    plans_dir: Path | None = Field(
        default=None,
        description="the city plans (plans/data/cities/*.yaml); unset: the packaged seed plans",
    )
    statistics_path: Path | None = Field(
        default=None, description="regional GDP and value added (CSV, plans/statistics.py)"
    )
    evaluator_sweep_seconds: float = Field(
        default=60.0,
        gt=0,
        description="how often every rule is re-judged even without new data (silent devices, "
        "repeats, forecasts)",
    )
    evaluator_clock: str = Field(
        default="wall",
        pattern="^(wall|data)$",
        description="judge silent devices against the wall clock, or (for replays of past "
        "data) against the latest data time heard",
    )
    send_replays: bool = Field(
        default=False, description="also notify alerts raised while replaying old data"
    )

    # Notifier: who is told (recipients file), over which channels
    notifier_group_id: str = "energywatch-notifier"
    recipients_path: Path | None = Field(
        default=None,
        description="recipients and their channels (plans/recipients.example.yaml shows the "
        "shape); unset: the single webhook below, told about every alert",
    )
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_max_attempts: int = Field(default=5, ge=1)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = "energywatch@localhost"
    smtp_security: str = Field(default="starttls", pattern="^(starttls|tls|none)$")

    # Alerts API: loopback unless configured
    alerts_api_host: str = "127.0.0.1"
    alerts_api_port: int = 38080
    access_path: Path | None = Field(
        default=None,
        description="supervisor and operator tokens for the Alerts API (salted digests); "
        "enterprise tokens come from the register",
    )

    # HJ 212 TCP gateway for VOC monitors' data loggers: loopback unless configured
    hj212_host: str = "127.0.0.1"
    hj212_port: int = 32120
    hj212_max_frame_bytes: int = Field(default=4096, ge=1100)
    hj212_idle_timeout_seconds: float = Field(default=600.0, gt=0)
    hj212_max_connections: int = Field(default=2000, ge=1)
    hj212_packets_per_second: float = Field(default=100.0, gt=0, description="per connection")
    hj212_login_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="until a connection has sent a registered device's frame with its "
        "password, it is closed after this long without a frame (instead of the idle timeout)",
    )

    # HTTPS ingest: loopback unless configured; TLS when both files are given
    http_host: str = "127.0.0.1"
    http_port: int = 38443
    http_tls_cert: Path | None = None
    http_tls_key: Path | None = None
    http_max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    http_max_connections: int = Field(default=1000, ge=1)
    http_header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="a request's headers must arrive this soon"
    )
    http_request_timeout_seconds: float = Field(
        default=60.0, gt=0, description="a request, body included, is answered this soon"
    )

    # MQTT ingest: the broker, the gateway's login and the topics' first level
    mqtt_url: str = "mqtt://127.0.0.1:31883"
    mqtt_username: str = "energywatch-gateway"
    mqtt_password: SecretStr | None = None
    mqtt_topic_prefix: str = "energywatch"

    # Metrics endpoints: loopback unless configured
    metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 39101
    notifier_metrics_port: int = 39102
    simulator_metrics_port: int = 39103
    ingest_metrics_port: int = 39104
    evaluator_metrics_port: int = 39105
    alerts_api_metrics_port: int = 39106

    def named_pipeline(self, prefix: str, **changes: Any) -> "Settings":
        """These settings with topics and consumer groups of their own, named from ``prefix``
        (``<prefix>.readings``, ``<prefix>-worker``...), and ``changes``: for a demo,
        benchmark, suite or test that must not share the stack's pipeline."""
        return self.model_copy(
            update={
                "readings_topic": f"{prefix}.readings",
                "voc_topic": f"{prefix}.voc",
                "production_topic": f"{prefix}.production",
                "alerts_topic": f"{prefix}.alerts",
                "dead_letter_topic": f"{prefix}.dead-letters",
                "worker_app_id": f"{prefix}-worker",
                "notifier_group_id": f"{prefix}-notifier",
                **changes,
            }
        )

    def as_env(self) -> dict[str, str]:
        """The environment that gives a child process these settings (secrets included:
        for a child's environment, never for a log)."""
        env = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"EW_{name.upper()}"] = str(value)
        return env

    @classmethod
    def load(cls, env_file: Path | None = None) -> "Settings":
        """Settings from the environment, falling back to the local stack's endpoints file."""
        path = env_file or default_env_file()
        return cls(_env_file=path if path.exists() else None)
