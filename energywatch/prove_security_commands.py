"""``energywatch prove fuzz | hostile | security``: bad input, hostile clients, security checks
(issue 8, parts 3 and 4). Registered on the ``prove`` sub-app in ``prove_commands.py``."""

import typer


def fuzz() -> None:
    """Fuzz the HJ 212, HTTPS and MQTT gateways (not yet implemented)."""
    raise typer.Exit(2)


def hostile() -> None:
    """Hostile clients against the HJ 212 and HTTPS gateways (not yet implemented)."""
    raise typer.Exit(2)


def security() -> None:
    """The security checks (not yet implemented)."""
    raise typer.Exit(2)
