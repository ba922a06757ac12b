"""A local webhook receiver for development, the main job and tests.

It is what an enterprise's endpoint would do: verify the signature and that its timestamp is
fresh (a replayed request is refused), de-duplicate on
``Idempotency-Key``, and keep what arrived (``WebhookNotification`` bodies: one event, or a
digest of several). It runs in a background thread on loopback.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import ValidationError

from alerts.channels.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotification,
    is_fresh,
    verify,
)
from contracts.alert_events import AlertEvent


@dataclass(frozen=True)
class Received:
    """One event as it arrived, alone or in a digest; ``duplicate`` when its event id had
    arrived before (in the same or another notification)."""

    event: AlertEvent
    idempotency_key: str
    received_at_monotonic: float
    duplicate: bool


@dataclass(frozen=True)
class ReceivedNotification:
    """One accepted request; ``duplicate`` when its ``Idempotency-Key`` had arrived before."""

    notification: WebhookNotification
    idempotency_key: str
    duplicate: bool


class WebhookReceiver:
    def __init__(self, secret: bytes | None, host: str = "127.0.0.1", port: int = 0) -> None:
        self._secret = secret
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.notifications: list[ReceivedNotification] = []
        self.received: list[Received] = []
        self.rejected = 0
        self._keys: set[str] = set()
        self._seen: set[str] = set()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/alerts"

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def unique_alerts(self) -> list[AlertEvent]:
        """Every alert event that arrived, once each, in arrival order."""
        with self._lock:
            return [r.event for r in self.received if not r.duplicate]

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` distinct events have arrived."""
        return self._wait(lambda: len(self._seen) >= count, timeout)

    def wait_for_ids(self, event_ids: set[str], timeout: float) -> bool:
        """Wait until every one of ``event_ids`` has arrived."""
        return self._wait(lambda: event_ids <= self._seen, timeout)

    def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
        return True

    def _reject(self, status: int) -> int:
        with self._lock:
            self.rejected += 1
        return status

    def _accept(self, body: bytes, headers: Any) -> int:
        if self._secret is not None:
            signature = headers.get(SIGNATURE_HEADER, "")
            timestamp = headers.get(TIMESTAMP_HEADER, "")
            if not verify(self._secret, timestamp, body, signature):
                return self._reject(401)
            if not is_fresh(timestamp, time.time()):
                return self._reject(401)  # a captured request replayed later
        try:
            notification = WebhookNotification.model_validate_json(body)
        except ValidationError:
            return self._reject(400)
        key = headers.get(IDEMPOTENCY_HEADER, "")
        if key != notification.idempotency_key:
            return self._reject(400)
        now = time.monotonic()
        with self._arrived:
            repeated = key in self._keys
            self._keys.add(key)
            self.notifications.append(ReceivedNotification(notification, key, repeated))
            if not repeated:
                for event in notification.events:
                    duplicate = event.event_id in self._seen
                    self._seen.add(event.event_id)
                    self.received.append(Received(event, key, now, duplicate))
            self._arrived.notify_all()
        return 204

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                status = receiver._accept(self.rfile.read(length), self.headers)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the console for the job's own output

        return Handler
