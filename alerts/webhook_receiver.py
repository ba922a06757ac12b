"""A local webhook receiver for development, the main job and tests.

It is what an enterprise's endpoint would do: verify the signature, de-duplicate on
``Idempotency-Key``, and keep what arrived. It runs in a background thread on loopback.
"""

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from contracts.alert_events import AlertEvent


@dataclass(frozen=True)
class Received:
    alert: AlertEvent
    received_at_monotonic: float
    duplicate: bool


class WebhookReceiver:
    def __init__(self, secret: bytes | None, host: str = "127.0.0.1", port: int = 0) -> None:
        self._secret = secret
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.received: list[Received] = []
        self.rejected = 0
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
        with self._lock:
            return [r.alert for r in self.received if not r.duplicate]

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` distinct alerts have arrived."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._seen) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
        return True

    def wait_for_ids(self, alert_ids: set[str], timeout: float) -> bool:
        """Wait until every one of ``alert_ids`` has arrived."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not alert_ids <= self._seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
        return True

    def _accept(self, body: bytes, headers: Any) -> int:
        if self._secret is not None:
            signature = headers.get(SIGNATURE_HEADER, "")
            timestamp = headers.get(TIMESTAMP_HEADER, "")
            if not verify(self._secret, timestamp, body, signature):
                with self._lock:
                    self.rejected += 1
                return 401
        try:
            alert = AlertEvent.model_validate(json.loads(body))
        except ValueError:
            with self._lock:
                self.rejected += 1
            return 400
        with self._arrived:
            duplicate = alert.alert_id in self._seen
            self._seen.add(alert.alert_id)
            self.received.append(Received(alert, time.monotonic(), duplicate))
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
