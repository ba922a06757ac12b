"""The HTTPS ingest API for enterprises' on-site energy systems (OpenAPI at ``/docs``).

    POST /v1/readings   15-minute (or 30/60-minute) readings, counters or both
    POST /v1/reports    daily and monthly energy totals, product output, output value, value added
    GET  /v1/health

Each request is one batch from one enterprise, authenticated by its token
(``Authorization: Bearer <credit code>.<secret>``); it may write only that enterprise's meters.
Every item gets its own answer: accepted, or rejected with the reason. Accepted items are in
Kafka (acknowledged) before the response is sent; rejected ones go to the dead-letter topic.
A known sender's upload refused as a whole (not JSON: ``not_json``; not a batch:
``wrong_schema``) is counted and dead-lettered byte for byte too; an unknown sender's is
answered 401 without being looked at. Bodies over ``EW_HTTP_MAX_BODY_BYTES`` get 413.
A batch re-sent with the same ``Idempotency-Key`` is answered again without publishing twice.
"""

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from contracts.production import encode_production_report
from contracts.readings import encode_reading
from energywatch.settings import Settings
from ingest.http_limits import KeepRawBody, raw_body
from ingest.idempotency import IdempotencyCache
from ingest.metrics import IngestMetrics
from ingest.publisher import KafkaPublisher, Message
from ingest.report_validation import check_report
from ingest.validation import Rejection, check_reading
from plans.register import EnterpriseEntry, Register

CHANNEL = "http"
MAX_ITEMS = 10_000
UPLOAD_PATHS = frozenset({"/v1/readings", "/v1/reports"})
_UNAUTHENTICATED = "missing or unknown token: send Authorization: Bearer <credit code>.<secret>"


class ReadingItem(BaseModel):
    """One reading as on-site systems send it (documentation; items are checked one by one so
    a bad item is refused on its own instead of failing the batch)."""

    meter_id: str = Field(examples=["91140882MA0XXXXXX0-EL01"])
    period_start: datetime = Field(description="interval start, ISO 8601; no offset = +08:00")
    interval_seconds: Literal[300, 900, 1800, 3600, 86400] = 900
    unit: str = Field(examples=["kWh", "MWh", "m3", "t", "kg", "GJ"])
    value: float | None = Field(default=None, ge=0, description="consumption in the interval")
    counter: float | None = Field(default=None, ge=0, description="cumulative register at its end")


class ReportItem(BaseModel):
    """One daily or monthly figure (documentation, as for ``ReadingItem``)."""

    kind: Literal["energy_total", "product_output", "output_value", "value_added"]
    period: Literal["day", "month"] = "month"
    period_start: datetime
    energy_type: str | None = Field(default=None, description="energy_total only")
    product_code: str | None = Field(default=None, description="product_output only")
    value: float
    unit: str = Field(examples=["MWh", "t", "CNY", "10^4 CNY"])


class ReadingBatch(BaseModel):
    items: list[Any] = Field(
        max_length=MAX_ITEMS, description="each item as ReadingItem", examples=[[]]
    )


class ReportBatch(BaseModel):
    items: list[Any] = Field(max_length=MAX_ITEMS, description="each item as ReportItem")


class ItemResult(BaseModel):
    index: int
    status: Literal["accepted", "rejected"]
    kind: str | None = None
    reason: str | None = None
    warnings: list[str] = Field(default_factory=list)


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    items: list[ItemResult]


def create_http_app(
    settings: Settings,
    register: Register,
    publisher: KafkaPublisher,
    metrics: IngestMetrics,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    """The API as an ASGI app; the caller runs it (uvicorn) and starts/stops the publisher."""
    app = FastAPI(
        title="EnergyWatch ingest",
        version="1",
        description=__doc__,
        openapi_tags=[{"name": "ingest", "description": "uploads from on-site energy systems"}],
        max_body_size=settings.http_max_body_bytes,
    )
    app.add_middleware(KeepRawBody, paths=UPLOAD_PATHS)
    bearer = HTTPBearer(auto_error=False)
    answers: IdempotencyCache[BatchResult] = IdempotencyCache(clock)

    def sender(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> EnterpriseEntry:
        enterprise = register.enterprise_for_token(credentials.credentials) if credentials else None
        if enterprise is None:
            metrics.auth_failures.labels(channel=CHANNEL).inc()
            raise HTTPException(401, _UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
        return enterprise

    def known_sender(request: Request) -> EnterpriseEntry | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        return register.enterprise_for_token(token.strip())

    async def refuse_upload(request: Request, kind: str, reason: str) -> EnterpriseEntry | None:
        """Count and dead-letter an upload refused as a whole; None (and an auth failure
        counted) when its sender is unknown, whose bytes are not kept."""
        enterprise = known_sender(request)
        if enterprise is None:
            metrics.auth_failures.labels(channel=CHANNEL).inc()
            return None
        metrics.received.labels(channel=CHANNEL).inc()
        metrics.rejected.labels(channel=CHANNEL, kind=kind).inc()
        await publisher.dead_letters(
            CHANNEL, [(kind, f"{enterprise.code}: {reason}", raw_body(request.scope))], clock()
        )
        return enterprise

    def unauthenticated() -> Response:
        return JSONResponse(
            {"detail": _UNAUTHENTICATED}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path in UPLOAD_PATHS:
            errors = exc.errors()
            kind = (
                "not_json"
                if any(e.get("type") == "json_invalid" for e in errors)
                else ("wrong_schema")
            )
            first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
            where = ".".join(str(part) for part in first.get("loc", ()))
            reason = f"{where}: {first.get('msg', '')}"[:500]
            if await refuse_upload(request, kind, reason) is None:
                return unauthenticated()
        return await request_validation_exception_handler(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def refused_request(request: Request, exc: StarletteHTTPException) -> Response:
        # FastAPI answers 400 for a body it cannot even decode (not UTF-8 JSON, say), and
        # for one whose sender went away (closed for its slowness): that one is no upload
        gone = isinstance(exc.__cause__, ClientDisconnect)
        if exc.status_code == 400 and request.url.path in UPLOAD_PATHS and not gone:
            reason = f"the body cannot be read as JSON: {exc.detail}"
            if await refuse_upload(request, "not_json", reason) is None:
                return unauthenticated()
        return await http_exception_handler(request, exc)

    async def finish(
        enterprise: EnterpriseEntry,
        items: Sequence[Any],
        outcomes: Sequence[tuple[Message, tuple[str, ...]] | Rejection],
        topic: str,
        key: str | None,
    ) -> BatchResult:
        now = clock()
        results: list[ItemResult] = []
        accepted: list[Message] = []
        rejected: list[tuple[str, str, bytes]] = []
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, Rejection):
                metrics.rejected.labels(channel=CHANNEL, kind=outcome.kind).inc()
                raw = json.dumps(items[index], ensure_ascii=False, default=str).encode()
                rejected.append((outcome.kind, outcome.reason, raw))
                results.append(
                    ItemResult(
                        index=index, status="rejected", kind=outcome.kind, reason=outcome.reason
                    )
                )
            else:
                message, warnings = outcome
                accepted.append(message)
                results.append(ItemResult(index=index, status="accepted", warnings=list(warnings)))
        if rejected:
            await publisher.dead_letters(CHANNEL, rejected, now)
        await publisher.publish(CHANNEL, topic, accepted)
        result = BatchResult(
            accepted=len(accepted), rejected=len(items) - len(accepted), items=results
        )
        if key is not None:
            answers.put(enterprise.code, key, result)
        return result

    def replayed(
        enterprise: EnterpriseEntry, key: str | None, response: Response
    ) -> BatchResult | None:
        if key is None:
            return None
        answer = answers.get(enterprise.code, key)
        if answer is not None:
            response.headers["Idempotent-Replayed"] = "true"
        return answer

    Outcome = tuple[Message, tuple[str, ...]] | Rejection

    def reading_outcome(item: Any, enterprise: EnterpriseEntry, now: datetime) -> Outcome:
        checked = check_reading(
            item, register=register, sender=enterprise.code, now=now, source="https"
        )
        if isinstance(checked, Rejection):
            return checked
        reading = checked.reading
        # keyed by unit: all of a unit's readings on one partition (contracts.partition_keys)
        return (reading.enterprise_code.encode(), encode_reading(reading)), checked.warnings

    def report_outcome(item: Any, enterprise: EnterpriseEntry, now: datetime) -> Outcome:
        checked = check_report(item, enterprise_code=enterprise.code, now=now)
        if isinstance(checked, Rejection):
            return checked
        report, warnings = checked
        return (enterprise.code.encode(), encode_production_report(report)), warnings

    async def upload(
        items: list[Any],
        check: Callable[[Any, EnterpriseEntry, datetime], Outcome],
        topic: str,
        enterprise: EnterpriseEntry,
        key: str | None,
        response: Response,
    ) -> BatchResult:
        earlier = replayed(enterprise, key, response)
        if earlier is not None:
            return earlier
        metrics.received.labels(channel=CHANNEL).inc(len(items))
        now = clock()
        return await finish(
            enterprise, items, [check(i, enterprise, now) for i in items], topic, key
        )

    @app.post("/v1/readings", response_model=BatchResult, tags=["ingest"])
    async def upload_readings(
        batch: ReadingBatch,
        response: Response,
        enterprise: Annotated[EnterpriseEntry, Depends(sender)],
        idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
    ) -> BatchResult:
        """Readings of the caller's meters; each item is answered on its own."""
        return await upload(
            batch.items,
            reading_outcome,
            settings.readings_topic,
            enterprise,
            idempotency_key,
            response,
        )

    @app.post("/v1/reports", response_model=BatchResult, tags=["ingest"])
    async def upload_reports(
        batch: ReportBatch,
        response: Response,
        enterprise: Annotated[EnterpriseEntry, Depends(sender)],
        idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
    ) -> BatchResult:
        """Daily and monthly figures of the caller: energy totals, product output, output value,
        value added."""
        return await upload(
            batch.items,
            report_outcome,
            settings.production_topic,
            enterprise,
            idempotency_key,
            response,
        )

    @app.get("/v1/health", tags=["ingest"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
