"""The databases of feedback, the audit log and the trash: SQLite files in ``settings.data_dir`` by default,
one PostgreSQL database (``BOT_DATABASE_URL``) that several workers share.

Each store's tables are an Alembic branch (``migrations/versions/``, shipped in the package) that is upgraded
to its head whenever the store opens; no ``alembic.ini`` is involved. To write a new revision of a branch:
``alembic.command.revision(alembic_config(), "message", head="feedback@head")``.
"""
from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key: workers starting at once migrate one after the other ("bot" in ASCII).
MIGRATION_LOCK = 0x626F74
BUSY_SECONDS = 30  # how long an SQLite writer waits for another one
DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}  # the drivers this package installs

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


class DatabaseOpenError(RuntimeError):
    """A database that cannot be used: the message is one line naming its URL, the password masked."""


def masked(url: str | URL) -> str:
    """The URL without its password; a string that does not parse loses all it holds before its last ``@``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    head, at, host = url.rpartition("@")
    if not at:
        return url
    scheme = head.split("://")[0] + "://" if "://" in head else ""
    return f"{scheme}***@{host}"


def database_url(database: str | Path) -> URL:
    """A store's database as an SQLAlchemy URL: a Path is an SQLite file, a string a URL (``postgresql://``
    means psycopg 3)."""
    if isinstance(database, Path):
        return URL.create("sqlite", database=str(database))
    try:
        url = make_url(database)
    except (ArgumentError, ValueError):
        raise DatabaseOpenError(f"the database URL {masked(database)} is not a URL: use sqlite:///FILE or "
                                "postgresql://USER:PASSWORD@HOST:PORT/DATABASE") from None
    backend = url.get_backend_name()
    if backend not in DRIVERS or url.drivername not in (backend, DRIVERS[backend]):
        raise DatabaseOpenError(f"the database URL {masked(url)} names {url.drivername}: only sqlite and "
                                "postgresql (driver psycopg) are supported")
    return url.set(drivername=DRIVERS[backend])


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _sqlite_engine(url: URL) -> Engine:
    if url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_SECONDS})

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection, _record):
        # SQLAlchemy, not the sqlite3 module, begins transactions (below); WAL lets readers run beside a writer.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def begin(connection):
        # IMMEDIATE takes the write lock first, waiting up to BUSY_SECONDS: a deferred transaction that read
        # before writing would fail at once when another process wrote in between (migrations read first).
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _engine(url: URL) -> Engine:
    """One engine (one connection pool) a URL and process, as SQLAlchemy advises."""
    key = url.render_as_string(hide_password=False)
    with _engines_lock:
        if key not in _engines:
            if url.get_backend_name() == "sqlite":
                _engines[key] = _sqlite_engine(url)
            else:  # pre-ping: a worker outlives a restart of the database server
                _engines[key] = create_engine(url, pool_pre_ping=True)
        return _engines[key]


class Database:
    """Thread-safe: each call takes a pooled connection for one transaction. Subclasses set ``BRANCH``, their
    migration branch, which is brought to its head when the store opens."""

    BRANCH = ""

    def __init__(self, database: str | Path):
        self.url = database_url(database)
        config = alembic_config()
        try:
            self.engine = _engine(self.url)
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                config.attributes["connection"] = conn
                command.upgrade(config, f"{self.BRANCH}@head")
        except (SQLAlchemyError, CommandError, OSError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise DatabaseOpenError(f"cannot open the database {masked(self.url)}: {reason}") from None

    def _connect(self) -> AbstractContextManager[Connection]:
        """One transaction: committed on success, rolled back on error."""
        return self.engine.begin()
