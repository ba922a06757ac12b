"""One alert event, or a digest of several, as every channel shows it: a title, plain text,
markdown (DingTalk and WeCom robots) and HTML (e-mail), in Chinese with English alongside.
Pure: no IO.

Times are shown in China Standard Time, the only place outside UTC (STYLE.md §6). Free text
from events and configuration goes into markdown on one line, so a message cannot inject
headings or quotes, and into HTML escaped.
"""

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from contracts.alert_events import AlertEvent, AlertKind, AlertSeverity
from contracts.identifiers import CHINA_STANDARD_TIME

#: How many events a digest lists in markdown; chat robots cap message size, and the full list
#: is in the plain text, the HTML and the webhook body.
DIGEST_MARKDOWN_LINES: Final = 30

SEVERITY_LABELS: Final = {
    AlertSeverity.INFO: "信息 Info",
    AlertSeverity.NOTICE: "提示 Notice",
    AlertSeverity.WARNING: "警告 Warning",
    AlertSeverity.CRITICAL: "严重 Critical",
}
KIND_LABELS: Final = {
    AlertKind.FIRED: "告警 Alert",
    AlertKind.ESCALATED: "升级 Escalated",
    AlertKind.REPEATED: "重复 Repeated",
    AlertKind.RESOLVED: "恢复 Resolved",
    AlertKind.ACKNOWLEDGED: "已确认 Acknowledged",
    AlertKind.SILENCED: "已静默 Silenced",
}
CST_NOTE: Final = "（北京时间 CST）"


@dataclass(frozen=True)
class RenderedMessage:
    """What a channel sends: the same content in each form, and the events it covers."""

    title: str
    text: str
    markdown: str
    html: str
    events: tuple[AlertEvent, ...]

    @property
    def is_digest(self) -> bool:
        return len(self.events) > 1


def cst(instant: datetime) -> str:
    """An instant as China Standard Time, to the second."""
    return instant.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M:%S")


def number(value: float) -> str:
    """A value for people: thousands separated, at most three decimals, no trailing zeros."""
    text = f"{value:,.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _with_unit(value: float, unit: str) -> str:
    return f"{number(value)} {unit}".rstrip()


def _comparison(event: AlertEvent) -> str | None:
    """``7,000 kWh，阈值 threshold 6,000 kWh（超出 above by 16.667%）``, or what of it exists."""
    value, threshold, unit = event.value, event.threshold, _one_line(event.unit)
    if value is None and threshold is None:
        return None
    parts = []
    if value is not None:
        parts.append(_with_unit(value, unit))
    if threshold is not None:
        parts.append(f"阈值 threshold {_with_unit(threshold, unit)}")
    text = "，".join(parts)
    if value is not None and threshold is not None and threshold != 0:
        excess = (value - threshold) / abs(threshold)
        words = "超出 above by" if excess >= 0 else "低于 below by"
        text += f"（{words} {number(abs(excess) * 100)}%）"
    return text


def _who(event: AlertEvent, names: Mapping[str, str]) -> str:
    """The enterprise by name (or code), or the region of a regional alert."""
    if event.enterprise_code is None:
        return f"区域 Region {event.region_code}" if event.region_code else "区域 Region"
    name = names.get(event.enterprise_code)
    return _one_line(name) if name else event.enterprise_code


def _severity(event: AlertEvent) -> str:
    text = SEVERITY_LABELS[event.severity]
    if event.kind is AlertKind.ESCALATED and event.previous_severity is not None:
        text += f"（由 from {SEVERITY_LABELS[event.previous_severity]} 升级 escalated）"
    return text


def _fields(event: AlertEvent, names: Mapping[str, str]) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    if event.enterprise_code is not None:
        name = names.get(event.enterprise_code)
        who = f"{_one_line(name)}（{event.enterprise_code}）" if name else event.enterprise_code
        fields.append(("企业 Enterprise", who))
    if event.region_code is not None:
        fields.append(("区域 Region", event.region_code))
    fields += [
        ("对象 Subject", event.subject),
        ("规则 Rule", event.rule_id),
        ("级别 Severity", _severity(event)),
    ]
    if (comparison := _comparison(event)) is not None:
        fields.append(("观测值 Value", comparison))
    if event.level:
        fields.append(("等级 Level", _one_line(event.level)))
    fields += [
        ("开始时间 Started", f"{cst(event.started_at)}{CST_NOTE}"),
        ("数据时间 Data time", f"{cst(event.at)}{CST_NOTE}"),
        ("说明 Message", _one_line(event.message)),
    ]
    if (ack := event.acknowledgement) is not None:
        comment = f"：{_one_line(ack.comment)}" if ack.comment.strip() else ""
        until = f"（至 until {cst(ack.expires_at)} 北京时间 CST）"
        fields.append(("确认 Acknowledged", f"{_one_line(ack.user)}{comment}{until}"))
    if event.replay:
        fields.append(("回放 Replay", "历史数据回放产生 raised while replaying past data"))
    fields += [("告警编号 Alert ID", event.alert_id), ("事件编号 Event ID", event.event_id)]
    return fields


def render_alert(
    event: AlertEvent, *, enterprise_names: Mapping[str, str] | None = None
) -> RenderedMessage:
    """One event as a message, titled by its kind (告警 / 升级 / 重复 / 恢复 / 已确认)."""
    names = enterprise_names or {}
    title = (
        f"【{SEVERITY_LABELS[event.severity]}】{KIND_LABELS[event.kind]}："
        f"{_who(event, names)} {event.subject}"
    )
    fields = _fields(event, names)
    text = "\n".join([title, *(f"{k}：{v}" for k, v in fields)])
    markdown = "\n\n".join([f"### {title}", *(f"**{k}**：{v}" for k, v in fields)])
    rows = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in fields
    )
    body = f"<h3>{html.escape(title)}</h3><table>{rows}</table>"
    return RenderedMessage(title, text, markdown, _html_document(title, body), (event,))


def _digest_line(event: AlertEvent, names: Mapping[str, str]) -> str:
    comparison = _comparison(event)
    numbers = f"：{comparison}" if comparison else ""
    return (
        f"[{SEVERITY_LABELS[event.severity]}] {KIND_LABELS[event.kind]} "
        f"{_who(event, names)} {event.subject}{numbers}，{cst(event.at)}"
    )


def render_digest(
    events: Sequence[AlertEvent], *, enterprise_names: Mapping[str, str] | None = None
) -> RenderedMessage:
    """Several events held back by a rate limit, as one message listing each of them."""
    if not events:
        raise ValueError("a digest needs at least one event")
    names = enterprise_names or {}
    counts = {kind: sum(e.kind is kind for e in events) for kind in AlertKind}
    summary = "，".join(f"{KIND_LABELS[k]} {n}" for k, n in counts.items() if n)
    title = f"告警汇总 Digest：{len(events)} 条 events（{summary}）"
    span = f"{cst(min(e.at for e in events))} 至 to {cst(max(e.at for e in events))}"
    period = f"数据时间 Data time：{span}{CST_NOTE}"
    lines = [_digest_line(e, names) for e in events]
    text = "\n".join([title, period, *lines])
    shown = [f"- {line}" for line in lines[:DIGEST_MARKDOWN_LINES]]
    if len(lines) > DIGEST_MARKDOWN_LINES:
        rest = len(lines) - DIGEST_MARKDOWN_LINES
        shown.append(f"- ……其余 {rest} 条见邮件或 Webhook（{rest} more in the e-mail or webhook）")
    markdown = "\n\n".join([f"### {title}", period, "\n".join(shown)])
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    body = f"<h3>{html.escape(title)}</h3><p>{html.escape(period)}</p><ol>{items}</ol>"
    return RenderedMessage(title, text, markdown, _html_document(title, body), tuple(events))


def render_alerts(
    events: Sequence[AlertEvent], *, enterprise_names: Mapping[str, str] | None = None
) -> RenderedMessage:
    """One event alone, or several as a digest: what a rate limiter's release becomes."""
    if len(events) == 1:
        return render_alert(events[0], enterprise_names=enterprise_names)
    return render_digest(events, enterprise_names=enterprise_names)


def _html_document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    )
