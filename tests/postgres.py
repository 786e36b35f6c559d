"""A real, throw-away PostgreSQL server for tests: initdb + pg_ctl on 127.0.0.1, a free port.

``start_postgres()`` returns a running ``PostgresServer``; ``server.stop()`` kills it
(``pg_ctl stop -m immediate``) and removes its files. Debian's server binaries live in
``/usr/lib/postgresql/<version>/bin`` (package ``postgresql-<version>``, or ``postgresql``).
``initdb`` and ``pg_ctl`` refuse to run as root, so as root they run as the ``postgres`` user
(``runuser``) in a temporary folder that user owns.

Connections: the superuser ``postgres`` over the unix socket (trust), and a password role
(``TEST_USER``/``TEST_PASSWORD``, scram-sha-256 over TCP) that owns the database ``TEST_DB``.
Tests use the session fixture ``postgres`` (import ``postgres_fixture`` into the test module).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

TEST_USER = "jw_user"
# Letters and punctuation that URLs must percent-encode: redaction must catch both forms.
TEST_PASSWORD = "s3cret:P@ss/w0rd"
TEST_DB = "jw_test"


def find_bin_dir() -> Path | None:
    """The newest installed /usr/lib/postgresql/<version>/bin holding initdb, or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]

    def version(path: Path) -> tuple[int, ...]:
        digits = path.parent.name.split(".")
        return tuple(int(d) for d in digits if d.isdigit())

    return max(found, key=version) if found else None


def missing_reason() -> str | None:
    """Why no server can start here, or None. In CI (CI=true) the caller must fail, not skip."""
    if find_bin_dir() is None:
        return "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    # initdb/pg_ctl refuse root; run them as the postgres system user then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class PostgresServer:
    bin_dir: Path
    base: Path
    port: int
    started_in: float  # seconds from initdb to accepting connections

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "sock"

    def url(
        self, user: str = TEST_USER, password: str | None = TEST_PASSWORD, db: str = TEST_DB
    ) -> str:
        """A postgresql:// URL over TCP on 127.0.0.1, the password percent-encoded."""
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def admin_connect(self, db: str = "postgres"):  # type: ignore[no-untyped-def]
        """A superuser psycopg connection over the unix socket (autocommit)."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir), port=self.port, user="postgres", dbname=db, autocommit=True
        )

    def stop(self) -> None:
        pg_ctl = str(self.bin_dir / "pg_ctl")
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(self.data_dir), "stop", "-m", "immediate", "-w"]),
            capture_output=True,
            timeout=30,
        )
        shutil.rmtree(self.base, ignore_errors=True)


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr or done.stdout}")


def start_postgres() -> PostgresServer:
    """initdb a fresh cluster, start it on 127.0.0.1:<free port>, create the test role and db."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError(missing_reason())
    started = time.monotonic()
    # Directly under /tmp: pytest's tmp folders are 0700 root, which postgres cannot traverse.
    base = Path(tempfile.mkdtemp(prefix="jw-postgres-"))
    (base / "sock").mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(base / "sock", "postgres", "postgres")
    server = PostgresServer(bin_dir, base, _free_port(), 0.0)
    try:
        _initdb(server)
        _pg_ctl_start(server)
        _create_test_role(server)
    except BaseException:
        server.stop()
        raise
    server.started_in = time.monotonic() - started
    return server


def _initdb(server: PostgresServer) -> None:
    argv = [str(server.bin_dir / "initdb"), "-D", str(server.data_dir), "-U", "postgres"]
    argv += ["--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions"]
    argv += ["-E", "UTF8", "--locale=C"]
    _run(argv, "initdb")


def _pg_ctl_start(server: PostgresServer) -> None:
    options = (
        f"-p {server.port} -k {server.socket_dir} -c listen_addresses=127.0.0.1"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    log = server.base / "server.log"
    argv = [str(server.bin_dir / "pg_ctl"), "-D", str(server.data_dir), "-l", str(log)]
    argv += ["-o", options, "-w", "-t", "30", "start"]
    _run(argv, "pg_ctl start")


def _create_test_role(server: PostgresServer) -> None:
    from psycopg import sql

    with server.admin_connect() as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(TEST_USER), sql.Literal(TEST_PASSWORD)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(TEST_DB), sql.Identifier(TEST_USER)
            )
        )


def fresh_database(server: PostgresServer, name: str) -> str:
    """Create an empty database owned by the test role; returns its URL (with the password)."""
    from psycopg import sql

    with server.admin_connect() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(TEST_USER)
            )
        )
    return server.url(db=name)


@pytest.fixture(scope="session", name="postgres")
def postgres_fixture() -> Iterator[PostgresServer]:
    """A server for the whole session; skipped only outside CI when the binaries are absent."""
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must install Debian's postgresql package", pytrace=False)
        pytest.skip(reason)
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()
