"""Pipeline health (运行监控), from Prometheus: what the ingest gateways accept, what the
workers consume, Kafka consumer lag, processing latency, dead letters, database write errors
and notification failures. Metric names are the ones the services export (``*/metrics.py``);
``energywatch_stream_consumer_lag_records`` is the workers' lag gauge (labels ``consumer``,
``topic``, ``partition``).
"""

from typing import Final

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.common import PROMETHEUS, dashboard

UID: Final = "ew-pipeline"
RATE: Final = "$__rate_interval"


def _query(expr: str, legend: str, ref_id: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).range()


def _panel(title: str, unit: str, *queries: prometheus.Dataquery) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).datasource(PROMETHEUS).unit(unit).height(8).span(12)
    for query in queries:
        panel = panel.with_target(query)
    return panel


def build() -> Dashboard:
    return (
        dashboard(
            UID,
            "EnergyWatch · pipeline health 运行监控",
            "Ingest rates, consumer lag, latency, dead letters, database write errors and "
            "notification failures of the EnergyWatch services.",
        )
        .time("now-6h", "now")
        .refresh("30s")
        .with_panel(
            stat.Panel()
            .title("Services up 服务状态")
            .datasource(PROMETHEUS)
            .with_target(
                prometheus.Dataquery()
                .expr('up{job=~"energywatch.*"}')
                .legend_format("{{service}} {{instance}}")
                .ref_id("A")
                .instant()
            )
            .height(4)
            .span(24)
        )
        .with_row(db.Row("Throughput 吞吐"))
        .with_panel(
            _panel(
                "Ingest rate per channel 接入速率",
                "reqps",
                _query(
                    f"sum by (channel) (rate(energywatch_ingest_accepted_total[{RATE}]))",
                    "accepted {{channel}}",
                ),
                _query(
                    f"sum by (channel) (rate(energywatch_ingest_rejected_total[{RATE}]))",
                    "rejected {{channel}}",
                    "B",
                ),
            )
        )
        .with_panel(
            _panel(
                "Records consumed by the workers 流处理速率",
                "reqps",
                _query(f"sum(rate(energywatch_stream_records_consumed_total[{RATE}]))", "readings"),
                _query(f"sum(rate(energywatch_voc_samples_consumed_total[{RATE}]))", "VOC", "B"),
                _query(
                    f"sum(rate(energywatch_production_reports_consumed_total[{RATE}]))",
                    "production",
                    "C",
                ),
            )
        )
        .with_panel(
            _panel(
                "Kafka consumer lag 消费延迟 (records)",
                "short",
                _query(
                    "sum by (consumer, topic) (energywatch_stream_consumer_lag_records)",
                    "{{consumer}} {{topic}}",
                ),
            )
        )
        .with_panel(
            _panel(
                "Processing latency 处理时延",
                "s",
                _query(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(energywatch_stream_event_to_row_seconds_bucket[{RATE}])))",
                    "reading produced → stored, p99",
                ),
                _query(
                    "histogram_quantile(0.5, sum by (le) "
                    f"(rate(energywatch_stream_event_to_row_seconds_bucket[{RATE}])))",
                    "reading produced → stored, p50",
                    "B",
                ),
                _query(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(energywatch_evaluator_publish_latency_seconds_bucket[{RATE}])))",
                    "alert emitted → published, p99",
                    "C",
                ),
                _query(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(energywatch_alerts_delivery_seconds_bucket[{RATE}])))",
                    "alert emitted → delivered, p99",
                    "D",
                ),
            )
        )
        .with_row(db.Row("Errors 错误"))
        .with_panel(
            _panel(
                "Dead letters 死信",
                "short",
                _query(
                    f"sum by (kind) (increase(energywatch_stream_dead_letters_total[{RATE}]))",
                    "readings {{kind}}",
                ),
                _query(
                    f"sum by (kind) (increase(energywatch_voc_dead_letters_total[{RATE}]))",
                    "VOC {{kind}}",
                    "B",
                ),
                _query(
                    f"sum by (kind) (increase(energywatch_production_dead_letters_total[{RATE}]))",
                    "production {{kind}}",
                    "C",
                ),
                _query(
                    f"sum by (channel) (increase(energywatch_ingest_dead_letters_total[{RATE}]))",
                    "ingest {{channel}}",
                    "D",
                ),
                _query(
                    f"sum by (kind) (increase(energywatch_alerts_dead_letters_total[{RATE}]))",
                    "alerts {{kind}}",
                    "E",
                ),
            )
        )
        .with_panel(
            _panel(
                "Database write errors 数据库写入错误",
                "short",
                _query(
                    f"sum(increase(energywatch_stream_db_write_errors_total[{RATE}]))", "readings"
                ),
                _query(f"sum(increase(energywatch_voc_db_write_errors_total[{RATE}]))", "VOC", "B"),
                _query(
                    f"sum(increase(energywatch_production_db_write_errors_total[{RATE}]))",
                    "production",
                    "C",
                ),
            )
        )
        .with_panel(
            _panel(
                "Notification failures 通知失败",
                "short",
                _query(
                    "sum by (channel, reason) "
                    f"(increase(energywatch_alerts_notification_failures_total[{RATE}]))",
                    "{{channel}} {{reason}}",
                ),
            )
        )
        .with_panel(
            _panel(
                "Alert evaluator 告警评估",
                "short",
                _query(
                    f"sum by (kind) (increase(energywatch_evaluator_events_total[{RATE}]))",
                    "events {{kind}}",
                ),
                _query(
                    f"sum(increase(energywatch_evaluator_pass_failures_total[{RATE}]))",
                    "failed passes",
                    "B",
                ),
            )
        )
        .build()
    )
