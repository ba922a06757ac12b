"""``energywatch prove fuzz | hostile | security``: bad input, hostile clients and the
security checks (issue 8, parts 3 and 4). Registered on the ``prove`` sub-app in
``energywatch/prove_commands.py``. Each prints a table and writes its figures as JSON to
``benchmarks/results/`` (``prove-fuzz-*.json``, ``prove-hostile-*.json``,
``prove-security-*.json``); each exits 1 when a check failed."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from energywatch.settings import Settings, default_env_file

console = Console(stderr=True)


def _logs() -> Path:
    logs = default_env_file().parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return logs


def _checks_table(title: str, checks: dict[str, bool]) -> Table:
    table = Table(title=title)
    table.add_column("check")
    table.add_column("passed")
    for name, ok in checks.items():
        table.add_row(name, "[green]yes[/green]" if ok else "[red]NO[/red]")
    return table


def _failed(error: Exception) -> typer.Exit:
    console.print(f"[red]the suite could not run:[/red] {error}")
    console.print(
        "is the local stack up? `energywatch stack status` (or `energywatch stack up`); "
        f"the gateways' logs are in {_logs()}"
    )
    return typer.Exit(2)


def fuzz(
    packets: Annotated[int, typer.Option(min=1, help="HJ 212 frames to send")] = 1_000_000,
    connections: Annotated[int, typer.Option(min=1, help="TCP connections at once")] = 32,
    valid_ratio: Annotated[
        float, typer.Option(min=0, max=1, help="Share of valid packets mixed in")
    ] = 0.1,
    http_requests: Annotated[int, typer.Option(min=0, help="Malformed HTTPS uploads")] = 2_000,
    mqtt_messages: Annotated[int, typer.Option(min=0, help="Malformed MQTT uploads")] = 2_000,
    seed: Annotated[int, typer.Option(help="The mutator's seed")] = 212,
) -> None:
    """Fuzzed HJ 212 frames and malformed HTTPS and MQTT uploads against the real gateways:
    no crash, and every frame and item accounted for by kind in /metrics and the dead-letter
    topic."""
    from benchmarks.results_file import write_results
    from proving_ground.fuzz import FuzzConfig, encode_for_json, run_fuzz

    config = FuzzConfig(
        packets=packets,
        connections=connections,
        valid_ratio=valid_ratio,
        seed=seed,
        http_requests=http_requests,
        mqtt_messages=mqtt_messages,
    )
    channels = (
        ("hj212",) + (("http",) if http_requests else ()) + (("mqtt",) if mqtt_messages else ())
    )
    try:
        with console.status("fuzzing") as status:
            results = run_fuzz(Settings.load(), config, _logs(), status.update, channels)
    except (OSError, RuntimeError) as error:
        raise _failed(error) from error
    path = write_results("prove-fuzz", encode_for_json(results))
    hj212 = results["hj212"]
    figures = Table(title="HJ 212 fuzzing")
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    figures.add_row("frames sent", f"{hj212['packets']:,}")
    figures.add_row("frames/s", f"{hj212['packets_per_second']:,}")
    figures.add_row("accepted", f"{hj212['gateway']['accepted']:,}")
    for kind, count in hj212["gateway"]["rejected_by_kind"].items():
        figures.add_row(f"rejected: {kind}", f"{count:,}")
    figures.add_row("notices (answered, nothing to store)", f"{hj212['gateway']['notices']:,}")
    console.print(figures)
    for channel in ("hj212", "http", "mqtt"):
        if channel in results:
            console.print(_checks_table(f"{channel}: checks", results[channel]["checks"]))
    console.print(f"results: {path}")
    raise typer.Exit(0 if results["passed"] else 1)


def hostile(
    flood: Annotated[int, typer.Option(min=1, help="Idle connections opened at once")] = 3000,
    slow_clients: Annotated[int, typer.Option(min=1, help="Slowloris clients")] = 200,
    max_connections: Annotated[
        int, typer.Option(min=1, help="The gateways' connection cap during the run")
    ] = 1000,
    timeout: Annotated[
        float, typer.Option(min=0.5, help="Login/header timeout during the run, seconds")
    ] = 5.0,
) -> None:
    """Oversized frames and bodies, slow clients, a client that never reads, connection
    floods against the HJ 212 and HTTPS gateways: each bounded, good clients answered."""
    from benchmarks.results_file import write_results
    from proving_ground.hostile import HostileConfig, run_hostile

    config = HostileConfig(
        flood_connections=flood,
        slow_clients=slow_clients,
        max_connections=max_connections,
        login_timeout_seconds=timeout,
        idle_timeout_seconds=timeout,
        header_timeout_seconds=timeout,
        request_timeout_seconds=timeout * 2,
    )
    try:
        with console.status("hostile clients") as status:
            results = run_hostile(Settings.load(), config, _logs(), status.update)
    except (OSError, RuntimeError) as error:
        raise _failed(error) from error
    path = write_results("prove-hostile", results)
    table = Table(title="hostile clients")
    for column in ("gateway", "attack", "bound", "closed", "within s", "good client p50/max ms"):
        table.add_column(column)
    for gateway in ("hj212", "http"):
        for attack, part in results.get(gateway, {}).items():
            if not isinstance(part, dict) or attack == "refusals":
                continue
            good = part.get("good_client") or {}
            table.add_row(
                gateway,
                attack,
                _bound(gateway, attack, config),
                str(part.get("closed_by_gateway", part.get("status", "-"))),
                str(part.get("closed_within_s", part.get("closed_after_s", "-"))),
                f"{good.get('p50_ms', '-')}/{good.get('max_ms', '-')}",
            )
    console.print(table)
    console.print(_checks_table("checks", results["checks"]))
    console.print(f"results: {path}")
    raise typer.Exit(0 if results["passed"] else 1)


def _bound(gateway: str, attack: str, config: Any) -> str:
    bounds = {
        ("hj212", "oversized_frame"): "frame ≤ 4096 B",
        ("hj212", "slow_clients"): f"login {config.login_timeout_seconds}s",
        ("hj212", "connection_flood"): f"≤ {config.max_connections} conns",
        ("hj212", "slow_reader"): f"write {config.idle_timeout_seconds}s",
        ("http", "oversized_body"): f"body ≤ {config.max_body_bytes:,} B",
        ("http", "slow_headers"): f"headers {config.header_timeout_seconds}s",
        ("http", "slow_bodies"): f"request {config.request_timeout_seconds}s",
        ("http", "connection_flood"): f"≤ {config.max_connections} conns",
    }
    return bounds.get((gateway, attack), "-")


def security(
    only: Annotated[
        list[str] | None,
        typer.Option(help="Run only these checks: api, sql, logs, webhook, bind (repeatable)"),
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option(help="The scenario `energywatch run` plays for the logs check")
    ] = None,
) -> None:
    """Cross-enterprise and cross-region access through every Alerts API route, SQL built
    only with parameters, no secret in the logs of a full `energywatch run`, webhook
    signatures verified, every service bound to 127.0.0.1."""
    from benchmarks.results_file import write_results
    from proving_ground.security import CHECKS, run_security

    chosen = tuple(only or CHECKS)
    unknown = [c for c in chosen if c not in CHECKS]
    if unknown:
        console.print(f"[red]unknown check(s) {unknown}[/red]: choose from {', '.join(CHECKS)}")
        raise typer.Exit(2)
    try:
        with console.status("security checks") as status:
            findings = run_security(Settings.load(), _logs(), status.update, chosen, scenario)
    except (OSError, RuntimeError) as error:
        raise _failed(error) from error
    table = Table(title="security")
    for column in ("check", "subject", "passed", "detail"):
        table.add_column(column, overflow="fold")
    for finding in findings:
        mark = "[green]yes[/green]" if finding.ok else "[red]NO[/red]"
        table.add_row(finding.check, finding.subject, mark, finding.detail)
    console.print(table)
    failed = [f for f in findings if not f.ok]
    path = write_results(
        "prove-security",
        {
            "checks": list(chosen),
            "findings": [f.__dict__ for f in findings],
            "failed": len(failed),
            "passed": not failed,
        },
    )
    console.print(f"{len(findings) - len(failed)} of {len(findings)} passed; results: {path}")
    raise typer.Exit(0 if not failed else 1)
