"""The Alerts API: alerts, their history, acknowledgements, silences and emergencies.

    GET    /alerts                         alerts, latest first, filtered, in pages
    GET    /alerts/{alert_id}              one alert and its latest event
    GET    /alerts/{alert_id}/history      every event of one alert, in order
    POST   /alerts/{alert_id}/acknowledge  stop its repeats for a while
    GET    /silences                       silences and maintenance windows in force
    POST   /silences                       mute matching alerts, or ignore a device's data
    DELETE /silences/{silence_id}          end one early
    POST   /emergencies                    declare or lift a heavy-pollution alert (operators)
    GET    /commands/{command_id}          how a request went
    GET    /healthz                        liveness and database (no token)

Every call but ``/healthz`` needs ``Authorization: Bearer <token>``. An enterprise (its upload
token) sees its own alerts; a supervisor (access-file token) those of its region; an operator
everything. An alert, silence or command the caller may not see is answered 404, exactly as
one that does not exist. Requests that change alerts are recorded as commands and applied by
the alert evaluator, the lifecycle's only writer: they are answered 202 with the command's
id; ``/commands/{command_id}`` tells when it was applied, or why not.
"""

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from pydantic import AwareDatetime

from alerts.access import (
    AccessConfig,
    Authenticator,
    Principal,
    PrincipalKind,
    SilenceRefused,
    region_prefix,
)
from alerts.api_models import (
    ANSWERS,
    NOT_FOUND,
    AcknowledgeRequest,
    AlertOut,
    AlertPage,
    CommandAccepted,
    CommandStatus,
    EmergencyRequest,
    Health,
    HistoryPage,
    Problem,
    SilenceAccepted,
    SilenceList,
    SilenceOut,
    SilenceRequest,
)
from alerts.metrics import AlertsApiMetrics
from contracts.alert_commands import (
    Acknowledge,
    AddSilence,
    AlertCommand,
    DeclareEmergency,
    RemoveSilence,
)
from contracts.alert_events import AlertSeverity, AlertStatus
from energywatch.settings import Settings
from plans.register import Register
from storage import alert_queries as queries
from storage.alert_queries import AlertFilter, CursorError, Position
from storage.migrate import migrate

Pool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]
_ALERT_ID = r"^[0-9a-f]{16,64}$"
_SILENCE_ID = r"^[A-Za-z0-9_.:\-]{1,64}$"
_MAX_SILENCE: Final = timedelta(days=366)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    register: Register,
    access: AccessConfig,
    pool_or_conninfo: Pool | str | None = None,
    *,
    registry: CollectorRegistry,
    clock: Callable[[], datetime] = _utc_now,
) -> FastAPI:
    """The API as an ASGI app. Given a connection string (default: ``settings.database_url``)
    it owns its pool: on start it applies pending migrations and opens the pool, on stop it
    closes it. Given an open pool, the caller owns it (and the schema)."""
    authenticator = Authenticator(register, access)
    metrics = AlertsApiMetrics.create(registry)
    if isinstance(pool_or_conninfo, AsyncConnectionPool):
        pool, conninfo = pool_or_conninfo, None
    else:
        conninfo = pool_or_conninfo or settings.database_url.get_secret_value()
        pool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=8,
            open=False,
            name="alerts-api",
            kwargs={"autocommit": True},
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if conninfo is None:
            yield
            return
        async with await psycopg.AsyncConnection.connect(conninfo) as conn:
            await migrate(conn)
        await pool.open(wait=True, timeout=30)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="EnergyWatch alerts",
        version="1",
        description=__doc__,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "alerts", "description": "alerts and their history"},
            {"name": "silences", "description": "silences and maintenance windows"},
            {"name": "emergencies", "description": "heavy-pollution alert levels (operators)"},
            {"name": "commands", "description": "what became of a request"},
            {"name": "health", "description": "for load balancers and probes"},
        ],
    )

    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            template = getattr(route, "path", "unmatched")
            metrics.requests.labels(template, request.method, str(status)).inc()
            metrics.request_seconds.labels(template).observe(time.perf_counter() - started)

    bearer = HTTPBearer(
        auto_error=False,
        scheme_name="bearer",
        bearerFormat="<credit code or name>.<secret>",
        description="An enterprise's upload token (from the register), or a supervisor's or "
        "operator's token (from the access file)",
    )

    async def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        principal = authenticator.principal_for(credentials.credentials) if credentials else None
        if principal is None:
            metrics.auth_failures.inc()
            raise HTTPException(
                401,
                "missing or unknown token: send Authorization: Bearer <token> (an enterprise's "
                "upload token, or a supervisor's or operator's token from the access file)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal

    Caller = Annotated[Principal, Depends(caller)]
    AlertId = Annotated[str, Path(pattern=_ALERT_ID, description="the alert's id (hex)")]
    Cursor = Annotated[str | None, Query(max_length=160, description="next_cursor of a page")]

    def position(cursor: str | None) -> Position | None:
        if cursor is None:
            return None
        try:
            return queries.decode_cursor(cursor)
        except CursorError as exc:
            raise HTTPException(
                400, "cursor is not one this API handed out: start again without it"
            ) from exc

    async def visible_alert(principal: Principal, alert_id: str) -> queries.StoredAlert:
        async with pool.connection() as conn:
            alert = await queries.get_alert(conn, authenticator.scope_of(principal), alert_id)
        if alert is None:
            raise HTTPException(404, f"no alert {alert_id}")
        return alert

    async def submit(
        command: AlertCommand, principal: Principal, response: Response
    ) -> CommandAccepted:
        async with pool.connection() as conn:
            command_id = await queries.insert_command(conn, command, principal.name)
        metrics.commands.labels(command.kind).inc()
        response.headers["Location"] = f"/commands/{command_id}"
        return CommandAccepted(
            command_id=command_id, kind=command.kind, status_url=f"/commands/{command_id}"
        )

    @app.get("/alerts", response_model=AlertPage, tags=["alerts"], responses=ANSWERS)
    async def list_alerts(
        principal: Caller,
        status: AlertStatus | None = None,
        severity: Annotated[
            AlertSeverity | None, Query(description="this severity or higher")
        ] = None,
        rule: Annotated[str | None, Query(max_length=128, description="rule id prefix")] = None,
        enterprise: Annotated[
            str | None, Query(pattern=r"^[0-9A-Z]{18}$", description="one unit's credit code")
        ] = None,
        region: Annotated[
            str | None,
            Query(pattern=r"^\d{6}$", description="a division code: a province, city or county"),
        ] = None,
        since: Annotated[
            AwareDatetime | None, Query(description="latest event at or after")
        ] = None,
        until: Annotated[AwareDatetime | None, Query(description="latest event before")] = None,
        include_replay: Annotated[
            bool, Query(description="also alerts raised while replaying old data")
        ] = False,
        cursor: Cursor = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> AlertPage:
        """Alerts the caller may see, latest event first."""
        filters = AlertFilter(
            status=status.value if status else None,
            min_severity=severity,
            rule_prefix=rule,
            enterprise_code=enterprise,
            region_prefix=region_prefix(region) if region else None,
            since=since,
            until=until,
            include_replay=include_replay,
        )
        async with pool.connection() as conn:
            alerts, after = await queries.list_alerts(
                conn, authenticator.scope_of(principal), filters, position(cursor), limit
            )
        return AlertPage(
            items=[AlertOut.model_validate(a) for a in alerts],
            next_cursor=queries.encode_cursor(after) if after else None,
        )

    @app.get(
        "/alerts/{alert_id}",
        response_model=AlertOut,
        tags=["alerts"],
        responses={**ANSWERS, 404: NOT_FOUND},
    )
    async def get_alert(principal: Caller, alert_id: AlertId) -> AlertOut:
        """One alert's latest state."""
        return AlertOut.model_validate(await visible_alert(principal, alert_id))

    @app.get(
        "/alerts/{alert_id}/history",
        response_model=HistoryPage,
        tags=["alerts"],
        responses={**ANSWERS, 404: NOT_FOUND},
    )
    async def alert_history(
        principal: Caller,
        alert_id: AlertId,
        cursor: Cursor = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> HistoryPage:
        """Every event of one alert, in the order they were emitted."""
        await visible_alert(principal, alert_id)
        async with pool.connection() as conn:
            events, after = await queries.alert_history(
                conn, authenticator.scope_of(principal), alert_id, position(cursor), limit
            )
        return HistoryPage(
            alert_id=alert_id,
            items=events,
            next_cursor=queries.encode_cursor(after) if after else None,
        )

    @app.post(
        "/alerts/{alert_id}/acknowledge",
        status_code=202,
        response_model=CommandAccepted,
        tags=["alerts"],
        responses={
            **ANSWERS,
            404: NOT_FOUND,
            409: {"model": Problem, "description": "resolved already"},
        },
    )
    async def acknowledge(
        principal: Caller, alert_id: AlertId, body: AcknowledgeRequest, response: Response
    ) -> CommandAccepted:
        """Stop a firing alert's repeats until the acknowledgement expires (an escalation ends
        it early)."""
        alert = await visible_alert(principal, alert_id)
        if alert.status == AlertStatus.RESOLVED:
            raise HTTPException(409, f"alert {alert_id} is resolved: nothing to acknowledge")
        command = Acknowledge(
            alert_id=alert_id,
            user=principal.name,
            comment=body.comment,
            expires_at=clock() + timedelta(minutes=body.expires_in_minutes),
        )
        return await submit(command, principal, response)

    @app.get("/silences", response_model=SilenceList, tags=["silences"], responses=ANSWERS)
    async def list_silences(
        principal: Caller,
        include_ended: Annotated[bool, Query(description="also ended and removed ones")] = False,
    ) -> SilenceList:
        """Silences and maintenance windows the evaluator has applied, latest start first
        (one just requested appears once applied: see its command)."""
        async with pool.connection() as conn:
            silences = await queries.list_silences(
                conn, authenticator.scope_of(principal), clock(), include_ended
            )
        return SilenceList(items=[SilenceOut.model_validate(s) for s in silences])

    @app.post(
        "/silences",
        status_code=202,
        response_model=SilenceAccepted,
        tags=["silences"],
        responses={
            **ANSWERS,
            403: {"model": Problem, "description": "not the caller's to silence"},
        },
    )
    async def add_silence(
        principal: Caller, body: SilenceRequest, response: Response
    ) -> SilenceAccepted:
        """Mute matching alerts' notifications, or ignore a device's data while it is under
        maintenance. The silence's id is chosen here, so no caller can replace another's."""
        now = clock()
        starts_at = body.starts_at or now
        if body.ends_at <= starts_at:
            raise HTTPException(422, "ends_at must be after starts_at")
        # a maintenance window is event time: one in the past still covers late data
        if body.silence_kind == "silence" and body.ends_at <= now:
            raise HTTPException(422, "a silence must end in the future (it mutes wall time)")
        if body.ends_at - starts_at > _MAX_SILENCE:
            raise HTTPException(422, "a silence lasts at most 366 days")
        try:
            enterprise = authenticator.silence_enterprise(principal, body.enterprise, body.subject)
        except SilenceRefused as refused:
            raise HTTPException(403, str(refused)) from None
        command = AddSilence(
            silence_id=f"api-{secrets.token_hex(8)}",
            silence_kind=body.silence_kind,
            rule=body.rule,
            subject=body.subject,
            enterprise=enterprise,
            starts_at=starts_at,
            ends_at=body.ends_at,
            created_by=principal.name,
            comment=body.comment,
        )
        accepted = await submit(command, principal, response)
        return SilenceAccepted(**accepted.model_dump(), silence_id=command.silence_id)

    @app.delete(
        "/silences/{silence_id}",
        status_code=202,
        response_model=CommandAccepted,
        tags=["silences"],
        responses={**ANSWERS, 404: NOT_FOUND},
    )
    async def remove_silence(
        principal: Caller,
        silence_id: Annotated[str, Path(pattern=_SILENCE_ID)],
        response: Response,
    ) -> CommandAccepted:
        """End a silence or maintenance window early."""
        async with pool.connection() as conn:
            visible = await queries.silence_visible(
                conn, authenticator.scope_of(principal), silence_id
            )
        if not visible:
            raise HTTPException(404, f"no silence {silence_id}")
        command = RemoveSilence(silence_id=silence_id)
        return await submit(command, principal, response)

    @app.post(
        "/emergencies",
        status_code=202,
        response_model=CommandAccepted,
        tags=["emergencies"],
        responses={**ANSWERS, 403: {"model": Problem, "description": "not an operator's token"}},
    )
    async def declare_emergency(
        principal: Caller, body: EmergencyRequest, response: Response
    ) -> CommandAccepted:
        """Declare, change or lift (``level`` null) a city's heavy-pollution alert level."""
        if principal.kind is not PrincipalKind.ADMIN:
            raise HTTPException(403, "only operators (admin tokens) may declare emergencies")
        command = DeclareEmergency(
            city=body.city,
            level=body.level,
            at=body.at or clock(),
            lead_time_hours=body.lead_time_hours,
        )
        return await submit(command, principal, response)

    @app.get(
        "/commands/{command_id}",
        response_model=CommandStatus,
        tags=["commands"],
        responses={**ANSWERS, 404: NOT_FOUND},
    )
    async def command_status(
        principal: Caller, command_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
    ) -> CommandStatus:
        """A request's fate: pending, applied, or failed with the evaluator's reason. Callers
        see their own requests; operators everyone's."""
        requested_by = None if principal.kind is PrincipalKind.ADMIN else principal.name
        async with pool.connection() as conn:
            command = await queries.get_command(conn, command_id, requested_by)
        if command is None:
            raise HTTPException(404, f"no command {command_id}")
        state: Literal["pending", "applied", "failed"] = (
            "failed" if command.error else "applied" if command.applied_at else "pending"
        )
        return CommandStatus(
            command_id=command.command_id,
            kind=command.kind,
            state=state,
            requested_by=command.requested_by,
            requested_at=command.requested_at,
            applied_at=command.applied_at,
            error=command.error,
            payload=command.payload,
        )

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def health(response: Response) -> Health:
        """Up, and whether the database answers (503 if not). No token needed."""
        try:
            async with pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, OSError):
            response.status_code = 503
            return Health(status="database unavailable")
        return Health(status="ok")

    return app
