"""dev stand-in for the harness helper's module."""
from __future__ import annotations
import os, uuid
from collections.abc import Iterator
from contextlib import contextmanager
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

def server_url() -> str:
    return os.environ["DATABASE_URL"]

@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(server, dbname=name)
    finally:
        with psycopg.connect(server, autocommit=True) as c:
            c.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
