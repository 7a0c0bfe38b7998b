"""A throw-away PostgreSQL server (Debian's binaries) for the database tests: its own data folder, a Unix socket
in that folder and no TCP listener, run as the ``postgres`` user when the tests run as root (the server refuses
root)."""
from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from webapp_helpers import free_port

INSTALL = "apt-get install postgresql"
START_TIMEOUT = 60
# Durability is not what these tests check (the app is killed, never the server): skip the disk flushes.
SERVER_OPTIONS = ("-c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                  "-c max_connections=300")


def server_binaries() -> Path:
    """The folder with initdb, pg_ctl and postgres: Debian keeps them in /usr/lib/postgresql/<version>/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None:
        pytest.fail(f"PostgreSQL's server programs (initdb, pg_ctl) are not installed: the database tests need "
                    f"them; on Debian `{INSTALL}` (`make test` does it)", pytrace=False)
    return Path(initdb).resolve().parent


@dataclass
class PostgresServer:
    folder: Path  # data folder, socket and log
    port: int
    run_as: list[str]  # the command prefix that runs a program as the server's owner
    _names: itertools.count = field(default_factory=itertools.count)

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = f"test_{next(self._names)}"
        with psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def log(self) -> str:
        return (self.folder / "server.log").read_text(encoding="utf-8", errors="replace")


def _passage(path: Path) -> None:
    """Let the server's owner reach ``path``: execute, not listing, on its parents. pytest keeps its temporary
    folders private to root and makes them so again whenever a pytest run starts, another one's too."""
    for parent in path.parents:
        if not parent.stat().st_mode & 0o001:
            parent.chmod(parent.stat().st_mode | 0o011)


def start_postgres(folder: Path) -> PostgresServer:
    """initdb and start a server in ``folder``, on a port no other server of this run uses."""
    binaries = server_binaries()
    run_as = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        _passage(folder)
    server = PostgresServer(folder, free_port(), run_as)
    subprocess.run([*run_as, str(binaries / "initdb"), "-D", str(folder / "data"), "-U", "postgres",
                    "--auth=trust", "--no-sync", "-E", "UTF8", "--no-locale"], check=True, capture_output=True)
    subprocess.run([*run_as, "mkdir", str(server.socket_dir)], check=True)
    started = subprocess.run(
        [*run_as, str(binaries / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "server.log"), "-w",
         "-t", str(START_TIMEOUT), "-o", f"-k {server.socket_dir} -p {server.port} {SERVER_OPTIONS}", "start"],
        capture_output=True, text=True)
    if started.returncode != 0:
        raise RuntimeError(f"PostgreSQL did not start:\n{started.stdout}{started.stderr}\n{server.log()}")
    return server


def stop_postgres(server: PostgresServer) -> None:
    if server.run_as:
        _passage(server.folder)
    subprocess.run([*server.run_as, str(server_binaries() / "pg_ctl"), "-D", str(server.folder / "data"),
                    "-m", "immediate", "stop"], check=True, capture_output=True)
