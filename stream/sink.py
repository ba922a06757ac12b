"""The worker's storage adapter: makes one batch durable in TimescaleDB, retrying on failure.

One connection, opened lazily (migrations applied on the first open); a lost connection is
re-opened with backoff and the whole batch retried, so a database outage delays the stream
but loses nothing: the batch's offsets are only acknowledged after ``write`` returns.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg.rows import TupleRow
from pydantic import SecretStr

from storage.migrate import migrate
from storage.policies import PolicyConfig, apply_policies, describe

log = logging.getLogger(__name__)
T = TypeVar("T")


class TimescaleSink:
    def __init__(
        self,
        database_url: SecretStr,
        on_error: Callable[[Exception], None] = lambda exc: None,
        max_backoff_seconds: float = 10.0,
        policies: PolicyConfig | None = None,
    ) -> None:
        self._url = database_url
        self._policies = policies  # applied once, after the migrations
        self._conn: psycopg.AsyncConnection[TupleRow] | None = None
        self._lock = asyncio.Lock()
        self._on_error = on_error
        self._max_backoff = max_backoff_seconds

    async def _connection(self) -> psycopg.AsyncConnection[TupleRow]:
        if self._conn is None or self._conn.closed:
            conn: psycopg.AsyncConnection[TupleRow] = await psycopg.AsyncConnection.connect(
                self._url.get_secret_value()
            )
            applied = await migrate(conn)
            if applied:
                log.info("applied schema migrations %s", applied)
            if self._policies is not None:
                report = await apply_policies(conn, self._policies)
                for line in describe(report.policies):
                    log.info("storage policy %s", line)
                self._policies = None
            self._conn = conn
        return self._conn

    async def run(
        self, what: str, work: Callable[[psycopg.AsyncConnection[TupleRow]], Awaitable[T]]
    ) -> T:
        """Run ``work`` on the sink's connection, serialised with other work; on a lost
        connection or a deadlock, reconnect with backoff and run it again from the start, so
        ``work`` must do all its writes in one transaction."""
        backoff = 0.2
        while True:
            try:
                async with self._lock:
                    conn = await self._connection()
                    return await work(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._on_error(exc)
                log.warning("%s failed (%s); retrying in %.1fs", what, type(exc).__name__, backoff)
                await self._drop_connection()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.close()
            except psycopg.Error:
                log.debug("closing a broken connection failed", exc_info=True)
            self._conn = None

    async def close(self) -> None:
        await self._drop_connection()
