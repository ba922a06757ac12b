"""Notification channels, each proven against a real server the test runs on 127.0.0.1.

The webhook goes to a local HTTP server, e-mail to a local SMTP server (aiosmtpd, with STARTTLS
and login where the test says so). DingTalk's and WeCom's robot APIs cannot be reached from
here, so a local HTTP server stands in for each: it records the request exactly as it arrived
and answers the way those APIs do (HTTP 200 with a JSON ``errcode``). The DingTalk signature
is checked against a value this file computes independently from DingTalk's published recipe.
"""

import asyncio
import base64
import email
import email.policy
import hashlib
import hmac
import json
import logging
import socket
import ssl
import subprocess
import threading
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from alerts.channels.delivery import RetryPolicy
from alerts.channels.mail import SmtpSettings
from alerts.channels.render import RenderedMessage, render_alert, render_alerts, render_digest
from alerts.channels.sender import ChannelSender
from alerts.channels.targets import DingTalkTarget, EmailTarget, WebhookTarget, WeComTarget
from alerts.channels.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotification,
    verify,
)
from alerts.channels.wecom import MARKDOWN_MAX_BYTES, TRUNCATION_MARK, truncate_utf8
from contracts.alert_events import Acknowledgement, AlertEvent, AlertKind, AlertSeverity

CODE = "91350100M000100Y43"
NOW = datetime(2026, 11, 1, 0, 20, 5, 123000, tzinfo=UTC)
FAST = RetryPolicy(max_attempts=4, initial_backoff_seconds=0.001, jitter_seconds=0.001)


def alert(n: int = 1, kind: AlertKind = AlertKind.FIRED) -> AlertEvent:
    return AlertEvent(
        event_id=f"{n:032x}",
        alert_id=f"{n:032x}",
        kind=kind,
        rule_id="electricity-interval-kwh",
        severity=AlertSeverity.CRITICAL,
        enterprise_code=CODE,
        region_code="350102",
        subject=f"M{n}",
        value=7000,
        threshold=6000,
        unit="kWh",
        message="15 分钟用电量超过限值",
        started_at=datetime(2026, 11, 1, tzinfo=UTC),
        at=datetime(2026, 11, 1, 0, 15, tzinfo=UTC),
        emitted_at=datetime(2026, 11, 1, 0, 20, tzinfo=UTC),
    )


@dataclass(frozen=True)
class Arrived:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class StandInHttpServer:
    """An HTTP server on 127.0.0.1 that records each POST and answers from a script of
    ``(status, json_body)``; the last answer repeats once the script runs out."""

    def __init__(self, answers: list[tuple[int, dict[str, object] | None]]) -> None:
        self._answers = list(answers)
        self._lock = threading.Lock()
        self.requests: list[Arrived] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path_and_query: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path_and_query}"

    def __enter__(self) -> "StandInHttpServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                path, _, query = self.path.partition("?")
                with stand_in._lock:
                    stand_in.requests.append(Arrived(path, query, dict(self.headers), body))
                    status, answer = (
                        stand_in._answers.pop(0)
                        if len(stand_in._answers) > 1
                        else stand_in._answers[0]
                    )
                payload = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


MESSAGE = render_alert(alert(), enterprise_names={CODE: "河津钢铁示例"})


def send(target, message: RenderedMessage = MESSAGE, key: str = "k-1", **sender_options):
    async def scenario():
        async with httpx.AsyncClient(timeout=5) as client:
            sender = ChannelSender(client, clock=lambda: NOW, **{"policy": FAST, **sender_options})
            return await sender.send(target, message, key)

    return asyncio.run(scenario())


# --- webhook ------------------------------------------------------------------------------


def test_a_webhook_is_signed_with_the_recipients_secret_and_carries_the_alert():
    with StandInHttpServer([(204, None)]) as server:
        target = WebhookTarget(url=server.url("/hook"), secret=SecretStr("s3cret"))
        result = send(target, key="alert-key-1")
    assert result.delivered
    assert result.attempts == 1
    [request] = server.requests
    headers = request.headers
    assert headers["Idempotency-Key"] == "alert-key-1"
    assert verify(b"s3cret", headers[TIMESTAMP_HEADER], request.body, headers[SIGNATURE_HEADER])
    assert not verify(b"other", headers[TIMESTAMP_HEADER], request.body, headers[SIGNATURE_HEADER])
    assert headers[TIMESTAMP_HEADER] == str(int(NOW.timestamp()))
    body = WebhookNotification.model_validate_json(request.body)
    assert body.events == (alert(),)
    assert body.title == MESSAGE.title
    assert not body.digest


def test_a_webhook_is_retried_after_server_errors_with_the_same_idempotency_key():
    failures = []
    with StandInHttpServer([(500, None), (503, None), (204, None)]) as server:
        target = WebhookTarget(url=server.url("/hook"), secret=SecretStr("s3cret"))
        result = send(target, key="same-key", on_failed_attempt=lambda c, r: failures.append(r))
    assert result.delivered
    assert result.attempts == 3
    assert failures == ["HTTP 500", "HTTP 503"]
    assert [r.headers["Idempotency-Key"] for r in server.requests] == ["same-key"] * 3
    for request in server.requests:
        h = request.headers
        assert verify(b"s3cret", h[TIMESTAMP_HEADER], request.body, h[SIGNATURE_HEADER])


def test_a_webhook_refused_with_a_4xx_is_not_retried():
    with StandInHttpServer([(400, None)]) as server:
        result = send(WebhookTarget(url=server.url("/hook")))
    assert not result.delivered
    assert result.permanent
    assert result.attempts == 1
    assert len(server.requests) == 1
    assert result.detail == "HTTP 400"


def test_a_webhook_that_keeps_failing_stops_after_the_last_attempt():
    with StandInHttpServer([(502, None)]) as server:
        result = send(WebhookTarget(url=server.url("/hook")))
    assert not result.delivered
    assert not result.permanent
    assert result.attempts == FAST.max_attempts == len(server.requests)
    assert result.detail == "HTTP 502"


def test_backoff_doubles_up_to_its_cap_plus_a_bounded_jitter():
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    policy = RetryPolicy(
        max_attempts=6, initial_backoff_seconds=1, max_backoff_seconds=5, jitter_seconds=0.5
    )
    with StandInHttpServer([(500, None)]) as server:
        result = send(WebhookTarget(url=server.url("/hook")), policy=policy, sleep=record)
    assert result.attempts == 6
    assert len(slept) == 5
    for waited, base in zip(slept, [1, 2, 4, 5, 5], strict=True):
        assert base <= waited <= base + 0.5


def test_an_unreachable_webhook_is_a_transient_failure():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = send(WebhookTarget(url=f"http://127.0.0.1:{port}/hook"))
    assert not result.delivered
    assert not result.permanent
    assert result.attempts == FAST.max_attempts
    assert result.detail == "ConnectError"


# --- e-mail -------------------------------------------------------------------------------


@dataclass
class Inbox:
    """What the local SMTP server received."""

    envelopes: list[Envelope] = field(default_factory=list)
    sessions: list[dict[str, bool]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.sessions.append({"tls": session.ssl is not None, "auth": session.authenticated})
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server(**smtp_parameters):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **smtp_parameters)
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: the server's, and the client's only CA."""
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return folder / "cert.pem", folder / "key.pem"


def server_tls(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


def only(login: bytes, password: bytes):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            login,
            password,
        )
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535

    return authenticate


def parse(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.original_content, policy=email.policy.default)


def test_an_email_arrives_with_its_chinese_subject_and_utf8_text_and_html():
    with smtp_server() as (inbox, port):
        smtp = SmtpSettings(
            host="127.0.0.1", port=port, sender="alerts@ew.example", security="none"
        )
        result = send(EmailTarget(address="energy@unit.example"), key="alert-key-9", smtp=smtp)
    assert result.delivered
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "alerts@ew.example"
    assert envelope.rcpt_tos == ["energy@unit.example"]
    mail = parse(envelope)
    assert mail["Subject"] == MESSAGE.title
    assert "河津钢铁示例" in mail["Subject"]
    assert mail["To"] == "energy@unit.example"
    assert "alert-key-9" in mail["Message-ID"]
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain.get_content_charset() == "utf-8"
    assert plain.get_content().replace("\r\n", "\n").strip() == MESSAGE.text
    assert "2026-11-01 08:15:00" in plain.get_content()  # data of 00:15 UTC, shown in CST
    assert "15 分钟用电量超过限值" in html.get_content()


def test_an_email_goes_over_starttls_with_login_when_configured(certificate):
    server_options = {
        "tls_context": server_tls(certificate),
        "require_starttls": True,
        "authenticator": only(b"notifier", b"pa55word"),
        "auth_require_tls": True,
    }
    with smtp_server(**server_options) as (inbox, port):
        smtp = SmtpSettings(
            host="127.0.0.1",
            port=port,
            sender="alerts@ew.example",
            security="starttls",
            username="notifier",
            password=SecretStr("pa55word"),
            ca_file=certificate[0],
        )
        result = send(EmailTarget(address="energy@unit.example"), smtp=smtp)
    assert result.delivered, result.detail
    assert inbox.sessions == [{"tls": True, "auth": True}]


def test_a_wrong_smtp_password_fails_at_once_and_is_never_logged(certificate, caplog):
    server_options = {
        "tls_context": server_tls(certificate),
        "require_starttls": True,
        "authenticator": only(b"notifier", b"pa55word"),
    }
    smtp = None
    with smtp_server(**server_options) as (inbox, port), caplog.at_level(logging.DEBUG):
        smtp = SmtpSettings(
            host="127.0.0.1",
            port=port,
            sender="alerts@ew.example",
            username="notifier",
            password=SecretStr("wrong-Pa55"),
            ca_file=certificate[0],
        )
        result = send(EmailTarget(address="energy@unit.example"), smtp=smtp)
    assert not result.delivered
    assert result.permanent
    assert result.attempts == 1
    assert result.detail.startswith("SMTP 535")
    assert inbox.envelopes == []
    assert "wrong-Pa55" not in caplog.text + result.detail + repr(smtp) + str(smtp)


def test_an_email_to_an_untrusted_server_is_not_sent(certificate):
    with smtp_server(tls_context=server_tls(certificate), require_starttls=True) as (inbox, port):
        smtp = SmtpSettings(host="127.0.0.1", port=port, sender="alerts@ew.example")
        result = send(EmailTarget(address="energy@unit.example"), smtp=smtp)  # system CAs only
    assert not result.delivered
    assert result.permanent
    assert result.detail.startswith("SMTP server certificate not trusted")
    assert inbox.envelopes == []


def test_email_without_an_smtp_server_configured_is_a_permanent_failure():
    result = send(EmailTarget(address="energy@unit.example"))
    assert (result.delivered, result.permanent, result.attempts) == (False, True, 0)


# --- DingTalk -----------------------------------------------------------------------------

DING_SECRET = "SEC0123456789abcdef"
DING_OK = (200, {"errcode": 0, "errmsg": "ok"})


def expected_dingtalk_sign(timestamp_ms: str, secret: str) -> str:
    """DingTalk's recipe, written out here independently of alerts.channels.dingtalk."""
    key = secret.encode("utf-8")
    digest = hmac.new(key, f"{timestamp_ms}\n{secret}".encode(), digestmod=hashlib.sha256)
    return urllib.parse.quote_plus(base64.b64encode(digest.digest()))


def test_a_dingtalk_message_is_signed_the_way_dingtalk_checks_it():
    with StandInHttpServer([DING_OK]) as server:
        target = DingTalkTarget(
            webhook_url=SecretStr(server.url("/robot/send?access_token=tok123")),
            secret=SecretStr(DING_SECRET),
            at_mobiles=("13800000000",),
        )
        result = send(target)
    assert result.delivered
    [request] = server.requests
    assert request.path == "/robot/send"
    query = urllib.parse.parse_qs(request.query)
    timestamp = str(int(NOW.timestamp() * 1000))
    assert query["access_token"] == ["tok123"]
    assert query["timestamp"] == [timestamp] == ["1793492405123"]
    raw_sign = dict(p.split("=", 1) for p in request.query.split("&"))["sign"]
    assert raw_sign == expected_dingtalk_sign(timestamp, DING_SECRET)  # URL-encoded on the wire
    assert request.query.endswith(f"&timestamp={timestamp}&sign={raw_sign}")


def test_a_dingtalk_message_is_markdown_with_a_title_and_the_people_to_notify():
    with StandInHttpServer([DING_OK]) as server:
        target = DingTalkTarget(
            webhook_url=SecretStr(server.url("/robot/send?access_token=t")),
            at_mobiles=("13800000000", "13900000000"),
        )
        send(target)
    [request] = server.requests
    assert "sign=" not in request.query  # no secret configured: unsigned
    payload = json.loads(request.body)
    assert set(payload) == {"msgtype", "markdown", "at"}
    assert payload["msgtype"] == "markdown"
    assert payload["markdown"]["title"] == MESSAGE.title
    assert payload["markdown"]["text"].startswith(MESSAGE.markdown)
    assert payload["markdown"]["text"].endswith("@13800000000 @13900000000")
    assert payload["at"] == {"atMobiles": ["13800000000", "13900000000"], "isAtAll": False}


def test_a_dingtalk_errcode_is_a_failure_even_though_the_http_status_is_200(caplog):
    refusal = (200, {"errcode": 310000, "errmsg": "sign not match"})
    with StandInHttpServer([refusal]) as server, caplog.at_level(logging.DEBUG):
        target = DingTalkTarget(
            webhook_url=SecretStr(server.url("/robot/send?access_token=tok-SECRET")),
            secret=SecretStr(DING_SECRET),
        )
        result = send(target)
    assert not result.delivered
    assert result.permanent
    assert result.attempts == 1
    assert result.detail == "DingTalk errcode 310000: sign not match"
    leaked = caplog.text + result.detail + repr(target)
    assert "tok-SECRET" not in leaked
    assert DING_SECRET not in leaked


def test_dingtalks_sending_too_fast_errcode_is_retried():
    too_fast = (200, {"errcode": 130101, "errmsg": "send too fast"})
    with StandInHttpServer([too_fast, DING_OK]) as server:
        result = send(DingTalkTarget(webhook_url=SecretStr(server.url("/robot/send?x=1"))))
    assert result.delivered
    assert result.attempts == 2 == len(server.requests)


def test_a_dingtalk_answer_without_an_errcode_is_not_taken_as_delivered():
    with StandInHttpServer([(200, {"hello": "proxy"})]) as server:
        result = send(DingTalkTarget(webhook_url=SecretStr(server.url("/robot/send?x=1"))))
    assert not result.delivered
    assert result.detail == "DingTalk answered without an errcode"


# --- WeCom --------------------------------------------------------------------------------

WECOM_OK = (200, {"errcode": 0, "errmsg": "ok"})


def test_a_wecom_message_is_markdown_content():
    with StandInHttpServer([WECOM_OK]) as server:
        result = send(WeComTarget(webhook_url=SecretStr(server.url("/cgi-bin/webhook/send?key=K"))))
    assert result.delivered
    [request] = server.requests
    assert urllib.parse.parse_qs(request.query) == {"key": ["K"]}
    assert json.loads(request.body) == {
        "msgtype": "markdown",
        "markdown": {"content": MESSAGE.markdown},
    }


def test_a_wecom_errcode_is_a_failure_and_its_frequency_limit_is_retried():
    with StandInHttpServer([(200, {"errcode": 93000, "errmsg": "invalid webhook url"})]) as bad:
        refused = send(WeComTarget(webhook_url=SecretStr(bad.url("/send?key=K"))))
    freq_limit = (200, {"errcode": 45009, "errmsg": "api freq out of limit"})
    with StandInHttpServer([freq_limit, WECOM_OK]) as busy:
        retried = send(WeComTarget(webhook_url=SecretStr(busy.url("/send?key=K"))))
    assert (refused.delivered, refused.permanent, refused.attempts) == (False, True, 1)
    assert "93000" in refused.detail
    assert (retried.delivered, retried.attempts) == (True, 2)


def test_long_wecom_content_is_cut_to_4096_bytes_on_a_character_boundary():
    long = replace(MESSAGE, markdown="### 告警汇总\n\n" + "- 河津钢铁示例 M1 超限 ⚡\n" * 400)
    assert len(long.markdown.encode()) > MARKDOWN_MAX_BYTES
    with StandInHttpServer([WECOM_OK]) as server:
        send(WeComTarget(webhook_url=SecretStr(server.url("/send?key=K"))), message=long)
    content = json.loads(server.requests[0].body)["markdown"]["content"]
    assert len(content.encode("utf-8")) <= MARKDOWN_MAX_BYTES
    assert content.endswith(TRUNCATION_MARK)
    assert long.markdown.startswith(content.removesuffix(TRUNCATION_MARK))


@given(st.text(), st.integers(min_value=len(TRUNCATION_MARK.encode()), max_value=300))
def test_truncation_fits_the_limit_and_keeps_a_prefix(text, limit):
    cut = truncate_utf8(text, limit)
    assert len(cut.encode()) <= limit
    if len(text.encode()) <= limit:
        assert cut == text
    else:
        kept = cut.removesuffix(TRUNCATION_MARK)
        assert text.startswith(kept)
        assert len(kept.encode()) > limit - len(TRUNCATION_MARK.encode()) - 4  # at most 1 char


# --- rendering ----------------------------------------------------------------------------

NAMES = {CODE: "河津钢铁示例"}


def test_an_alert_renders_with_severity_values_and_china_standard_time_in_both_languages():
    m = render_alert(alert(), enterprise_names=NAMES)
    assert m.title == "【严重 Critical】告警 Alert：河津钢铁示例 M1"
    assert "观测值 Value：7,000 kWh，阈值 threshold 6,000 kWh（超出 above by 16.667%）" in m.text
    assert "开始时间 Started：2026-11-01 08:00:00（北京时间 CST）" in m.text
    assert "**数据时间 Data time**：2026-11-01 08:15:00（北京时间 CST）" in m.markdown
    assert "区域 Region：350102" in m.text
    assert f"事件编号 Event ID：{alert().event_id}" in m.text
    assert "河津钢铁示例（91350100M000100Y43）" in m.html


@pytest.mark.parametrize(
    ("kind", "word"),
    [
        (AlertKind.FIRED, "告警"),
        (AlertKind.ESCALATED, "升级"),
        (AlertKind.REPEATED, "重复"),
        (AlertKind.RESOLVED, "恢复"),
        (AlertKind.ACKNOWLEDGED, "已确认"),
        (AlertKind.SILENCED, "已静默"),
    ],
)
def test_the_title_says_what_happened_to_the_alert(kind, word):
    assert f"】{word} " in render_alert(alert(kind=kind)).title


def test_an_escalation_names_the_severity_before_and_an_acknowledgement_who_and_until_when():
    escalated = alert(kind=AlertKind.ESCALATED).model_copy(
        update={"previous_severity": AlertSeverity.WARNING}
    )
    assert "严重 Critical（由 from 警告 Warning 升级 escalated）" in render_alert(escalated).text
    acknowledged = alert(kind=AlertKind.ACKNOWLEDGED).model_copy(
        update={
            "acknowledgement": Acknowledgement(
                user="zhang.san",
                comment="检修中",
                at=NOW,
                expires_at=NOW + timedelta(hours=4),
            )
        }
    )
    text = render_alert(acknowledged).text
    assert (
        "确认 Acknowledged：zhang.san：检修中（至 until 2026-11-01 12:20:05 北京时间 CST）" in text
    )


def test_a_regional_alert_without_numbers_names_its_region():
    regional = alert().model_copy(
        update={
            "enterprise_code": None,
            "region_code": "140882",
            "subject": "county-140882",
            "value": None,
            "threshold": None,
            "level": "orange",
        }
    )
    m = render_alert(regional, enterprise_names=NAMES)
    assert m.title == "【严重 Critical】告警 Alert：区域 Region 140882 county-140882"
    assert "企业" not in m.text
    assert "观测值" not in m.text
    assert "等级 Level：orange" in m.text


def test_an_unknown_enterprise_is_shown_by_its_code():
    assert render_alert(alert()).title.endswith(f"{CODE} M1")


def test_free_text_cannot_break_the_markdown_or_the_html():
    hostile = alert().model_copy(update={"message": "a\n# 标题\n<script>x</script>"})
    m = render_alert(hostile)
    assert "\n# " not in m.markdown
    assert "<script>" not in m.html
    assert "&lt;script&gt;" in m.html


def test_a_digest_lists_every_event_and_counts_them_by_kind():
    events = [alert(1), alert(2), alert(3, AlertKind.RESOLVED)]
    m = render_digest(events, enterprise_names=NAMES)
    assert m.title == "告警汇总 Digest：3 条 events（告警 Alert 2，恢复 Resolved 1）"
    assert m.events == tuple(events)
    assert m.is_digest
    for n in (1, 2, 3):
        assert f"河津钢铁示例 M{n}：7,000 kWh" in m.text
        assert f"河津钢铁示例 M{n}：" in m.markdown
    many = render_digest([alert(n) for n in range(1, 41)])
    assert "其余 10 条" in many.markdown
    assert all(f" M{n}：" in many.text for n in range(1, 41))


def test_one_event_renders_alone_and_several_as_a_digest():
    assert not render_alerts([alert(1)]).is_digest
    assert render_alerts([alert(1)]).title == render_alert(alert(1)).title
    assert render_alerts([alert(1), alert(2)]).title.startswith("告警汇总")


def test_renders_use_the_time_of_the_event_not_of_rendering():
    later = alert().model_copy(update={"at": NOW + timedelta(days=1)})
    assert "2026-11-02 08:20:05" in render_alert(later).text
