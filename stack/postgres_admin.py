"""The project's role, database and extension inside the stack's PostgreSQL cluster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from stack.scram import scram_sha256_verifier

if TYPE_CHECKING:
    import psycopg

ROLE = "energywatch"
DATABASE = "energywatch"


def admin_connection(socket_dir: Path, port: int, dbname: str = "postgres") -> psycopg.Connection:
    """A superuser connection over the cluster's private Unix socket (peer auth, see pg_ident)."""
    import psycopg  # imported on use, like every client library of the stack

    return psycopg.connect(
        host=str(socket_dir),
        port=port,
        user="postgres",
        dbname=dbname,
        autocommit=True,
        connect_timeout=5,
    )


def ensure_account(socket_dir: Path, port: int, password: SecretStr) -> None:
    """Create or update role ``energywatch`` (LOGIN, CREATEDB) and its database with TimescaleDB."""
    from psycopg import sql

    verifier = scram_sha256_verifier(password.get_secret_value())
    with admin_connection(socket_dir, port) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
        statement = "ALTER ROLE {} LOGIN CREATEDB PASSWORD {}"
        if exists is None:
            statement = "CREATE ROLE {} LOGIN CREATEDB PASSWORD {}"
        conn.execute(sql.SQL(statement).format(sql.Identifier(ROLE), sql.Literal(verifier)))
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if found.fetchone() is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(DATABASE), sql.Identifier(ROLE)
                )
            )
    with admin_connection(socket_dir, port, DATABASE) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
