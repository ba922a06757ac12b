"""One alert, or a digest of several, as every channel shows it: a title, plain text,
markdown (DingTalk and WeCom robots) and HTML (e-mail). Pure: no IO.

Times are shown in China Standard Time, the only place outside UTC (STYLE.md §6). Free text
from alerts and configuration goes into markdown on one line, so a message cannot inject
headings or quotes, and into HTML escaped.
"""

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from contracts.alert_events import AlertEvent, AlertSeverity
from contracts.identifiers import CHINA_STANDARD_TIME

#: How many alerts a digest lists in markdown; chat robots cap message size, and the full list
#: is in the plain text, the HTML and the webhook body.
DIGEST_MARKDOWN_LINES: Final = 30


class NoticeKind(StrEnum):
    FIRED = "fired"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    REPEATED = "repeated"


SEVERITY_LABELS: Final = {
    AlertSeverity.NOTICE: "提示",
    AlertSeverity.WARNING: "警告",
    AlertSeverity.CRITICAL: "严重",
}
KIND_LABELS: Final = {
    NoticeKind.FIRED: "告警触发",
    NoticeKind.RESOLVED: "告警恢复",
    NoticeKind.ESCALATED: "告警升级",
    NoticeKind.REPEATED: "告警持续",
}
_KIND_BY_STATUS: Final = {"firing": NoticeKind.FIRED, "resolved": NoticeKind.RESOLVED}


@dataclass(frozen=True)
class RenderedMessage:
    """What a channel sends: the same content in each form, and the alerts it covers."""

    title: str
    text: str
    markdown: str
    html: str
    alerts: tuple[AlertEvent, ...]

    @property
    def is_digest(self) -> bool:
        return len(self.alerts) > 1


def kind_of(alert: AlertEvent) -> NoticeKind:
    """The notice an alert event makes, from its status (an ``escalated`` status, should the
    contract gain one, maps by value)."""
    status = alert.status.value
    return _KIND_BY_STATUS[status] if status in _KIND_BY_STATUS else NoticeKind(status)


def cst(instant: datetime) -> str:
    """An instant as China Standard Time, to the second."""
    return instant.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M:%S")


def number(value: float) -> str:
    """A value for people: thousands separated, at most three decimals, no trailing zeros."""
    text = f"{value:,.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def duration(seconds: int) -> str:
    for size, unit in ((86_400, "天"), (3_600, "小时"), (60, "分钟")):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} 秒"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _comparison(alert: AlertEvent) -> str:
    unit = alert.value_unit
    text = f"{number(alert.observed_value)} {unit}，阈值 {number(alert.threshold_value)} {unit}"
    if alert.threshold_value != 0:
        excess = (alert.observed_value - alert.threshold_value) / abs(alert.threshold_value)
        text += f"（{'超出' if excess >= 0 else '低于'} {number(abs(excess) * 100)}%）"
    return text


def _enterprise(alert: AlertEvent, name: str | None) -> str:
    return f"{_one_line(name)}（{alert.enterprise_code}）" if name else alert.enterprise_code


def _fields(alert: AlertEvent, enterprise_name: str | None) -> list[tuple[str, str]]:
    return [
        ("企业", _enterprise(alert, enterprise_name)),
        ("对象", alert.subject),
        ("规则", alert.rule_id),
        ("观测值", _comparison(alert)),
        ("时段", f"{cst(alert.period_start)} 起 {duration(alert.window_seconds)}（北京时间）"),
        ("告警时间", f"{cst(alert.raised_at)}（北京时间）"),
        ("说明", _one_line(alert.message)),
        ("告警编号", alert.alert_id),
    ]


def render_alert(
    alert: AlertEvent, *, enterprise_name: str | None = None, kind: NoticeKind | None = None
) -> RenderedMessage:
    """One alert as a message; ``kind`` overrides the notice its status implies."""
    kind = kind or kind_of(alert)
    severity = SEVERITY_LABELS[alert.severity]
    who = _one_line(enterprise_name) if enterprise_name else alert.enterprise_code
    title = f"【{severity}】{KIND_LABELS[kind]}：{who} {alert.subject}"
    fields = _fields(alert, enterprise_name)
    text = "\n".join([title, *(f"{k}：{v}" for k, v in fields)])
    markdown = "\n\n".join([f"### {title}", *(f"**{k}**：{v}" for k, v in fields)])
    rows = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in fields
    )
    body = f"<h3>{html.escape(title)}</h3><table>{rows}</table>"
    return RenderedMessage(title, text, markdown, _html_document(title, body), (alert,))


def _digest_line(alert: AlertEvent, names: Mapping[str, str]) -> str:
    who = _one_line(names.get(alert.enterprise_code, alert.enterprise_code))
    return (
        f"[{SEVERITY_LABELS[alert.severity]}] {KIND_LABELS[kind_of(alert)]} {who} "
        f"{alert.subject}：{number(alert.observed_value)}/{number(alert.threshold_value)} "
        f"{alert.value_unit}，{cst(alert.raised_at)}"
    )


def render_digest(
    alerts: Sequence[AlertEvent], *, enterprise_names: Mapping[str, str] | None = None
) -> RenderedMessage:
    """Several alerts held back by a rate limit, as one message listing each of them."""
    if not alerts:
        raise ValueError("a digest needs at least one alert")
    names = enterprise_names or {}
    counts = {kind: sum(kind_of(a) is kind for a in alerts) for kind in NoticeKind}
    summary = "，".join(f"{KIND_LABELS[k][2:]} {n}" for k, n in counts.items() if n)
    title = f"告警汇总：{len(alerts)} 条（{summary}）"
    since = f"{cst(min(a.raised_at for a in alerts))} 至 {cst(max(a.raised_at for a in alerts))}"
    lines = [_digest_line(a, names) for a in alerts]
    text = "\n".join([title, f"告警时间：{since}（北京时间）", *lines])
    shown = [f"- {line}" for line in lines[:DIGEST_MARKDOWN_LINES]]
    if len(lines) > DIGEST_MARKDOWN_LINES:
        shown.append(f"- ……其余 {len(lines) - DIGEST_MARKDOWN_LINES} 条见邮件或 Webhook")
    markdown = "\n\n".join([f"### {title}", f"告警时间：{since}（北京时间）", "\n".join(shown)])
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    body = f"<h3>{html.escape(title)}</h3><p>告警时间：{since}（北京时间）</p><ol>{items}</ol>"
    return RenderedMessage(title, text, markdown, _html_document(title, body), tuple(alerts))


def render_alerts(
    alerts: Sequence[AlertEvent], *, enterprise_names: Mapping[str, str] | None = None
) -> RenderedMessage:
    """One alert alone, or several as a digest: what a rate limiter's release becomes."""
    if len(alerts) == 1:
        names = enterprise_names or {}
        return render_alert(alerts[0], enterprise_name=names.get(alerts[0].enterprise_code))
    return render_digest(alerts, enterprise_names=enterprise_names)


def _html_document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    )
