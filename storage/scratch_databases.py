"""Throw-away databases on the local server, for tests and benchmarks: created empty, dropped
afterwards (migrations are applied by whoever connects first, as in production)."""

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new, empty database named ``<prefix>_<random>``; dropped on exit."""
    dbname = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    try:
        yield psycopg.conninfo.make_conninfo(admin_url, dbname=dbname)
    finally:
        drop_database(admin_url, dbname)


def recreate_database(admin_url: str, dbname: str) -> str:
    """Drop ``dbname`` if it exists and create it empty; return its URL (for a demo that
    starts clean every run and keeps its result afterwards)."""
    drop_database(admin_url, dbname)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    return psycopg.conninfo.make_conninfo(admin_url, dbname=dbname)


def drop_database(admin_url: str, dbname: str, timeout: float = 60) -> None:
    """Drop a database. FORCE ends our own sessions in it, but not an autovacuum worker (the
    superuser's) that a busy run woke up: wait for that to finish."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(admin_url, autocommit=True) as conn:
        while True:
            try:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
                return
            except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
