"""A throwaway PostgreSQL cluster: started in a directory of its own, stopped and deleted after.

The tests need a real PostgreSQL server (the journal shared by several switch instances is a
PostgreSQL one), and neither a developer's machine nor CI should need one set up beforehand:
only the server binaries (Debian's `postgresql` package). This module makes a cluster with
`initdb` in a fresh directory, starts it with `pg_ctl` on a free port of 127.0.0.1, and hands
back its URL; stopping it kills it at once (`pg_ctl stop -m immediate`: nothing in it is worth
a clean shutdown) and removes the directory.

    python -m tools.pgcluster start /tmp/pg     # prints postgresql://postgres@127.0.0.1:PORT/postgres
    python -m tools.pgcluster stop /tmp/pg

From Python: `with cluster() as pg: ... pg.url ...`, or `start()` and `stop(directory)`.

The binaries are looked for on PATH, then in /usr/lib/postgresql/*/bin (Debian keeps them there,
off PATH; the newest version wins). CARDSWITCH_PG_SEARCH replaces that second place (glob
patterns separated by ':'), for tests that need the binaries not to be found.

PostgreSQL refuses to run as root. As root, the cluster is made and run as the unprivileged user
`postgres` (which Debian's package creates), and the directory is handed to that user: it must be
one that user can reach, so use one under /tmp (the default temporary directory is).

The server is for tests: trust authentication, on 127.0.0.1 only (the unix socket, in the
cluster directory, is not allowed in), fsync, synchronous commit and full-page writes off (a
crash loses the cluster, which nobody wants back), up to 200 connections (several switch
instances, each with a pool, and the tests' own).
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

SEARCH_ENV = "CARDSWITCH_PG_SEARCH"
DEFAULT_SEARCH = ("/usr/lib/postgresql/*/bin",)
RUN_AS = "postgres"  # the unprivileged user a root caller runs the cluster as
SUPERUSER = "postgres"
INSTALL_HINT = "install Debian's postgresql package (apt-get install postgresql)"

SETTINGS = """
# tools.pgcluster: a throwaway server for tests
listen_addresses = '127.0.0.1'
unix_socket_directories = '{socket_dir}'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
"""

HBA = """# tools.pgcluster: trust, on 127.0.0.1 only
host all all 127.0.0.1/32 trust
"""


class ClusterError(Exception):
    """The cluster could not be made, started or stopped; the message is one line."""


class MissingBinaries(ClusterError):
    """No initdb and pg_ctl to be found: the PostgreSQL server is not installed."""


@dataclass(frozen=True)
class Cluster:
    directory: Path  # everything of the cluster's: data/, the log, the unix socket
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"


@dataclass(frozen=True)
class Binaries:
    initdb: str
    pg_ctl: str


def _version_key(directory: str) -> tuple[int, ...]:
    """Sort key for .../postgresql/15/bin: its version's numbers (so 16 comes after 9.6)."""
    return tuple(int(number) for number in re.findall(r"\d+", directory))


def find_binaries(search: Sequence[str] | None = None) -> Binaries:
    """initdb and pg_ctl: from PATH if both are there, else from the newest of the directories
    the glob patterns `search` match (default CARDSWITCH_PG_SEARCH, else Debian's place)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Binaries(initdb, pg_ctl)
    if search is None:
        search = os.environ[SEARCH_ENV].split(":") if SEARCH_ENV in os.environ else DEFAULT_SEARCH
    found = [directory for pattern in search if pattern for directory in glob.glob(pattern)]
    for directory in sorted(found, key=_version_key, reverse=True):
        initdb, pg_ctl = os.path.join(directory, "initdb"), os.path.join(directory, "pg_ctl")
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return Binaries(initdb, pg_ctl)
    places = ":".join(search)
    raise MissingBinaries(f"no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in {places}: {INSTALL_HINT}")


def _run_as() -> pwd.struct_passwd | None:
    """The user to run the server as: None to stay oneself, the `postgres` user when root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(RUN_AS)
    except KeyError:
        raise ClusterError(f"running as root, and PostgreSQL refuses root: no user {RUN_AS!r} to run it as; "
                           f"{INSTALL_HINT} (it creates that user)") from None


def _run(command: list[str], directory: Path, user: pwd.struct_passwd | None, what: str) -> None:
    """Run a PostgreSQL program (as `user` when given), in `directory` (a working directory that
    user can reach: root's may not be); fail with its last line of output."""
    ids = {}
    if user is not None:
        ids = {"user": user.pw_uid, "group": user.pw_gid,
               "extra_groups": os.getgrouplist(user.pw_name, user.pw_gid)}
    env = {**os.environ, "LC_ALL": "C"}
    if user is not None:
        env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
    result = subprocess.run(command, cwd=directory, env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, **ids)  # type: ignore[call-overload]
    if result.returncode != 0:
        lines = (result.stderr + result.stdout).strip().splitlines() or [f"exit status {result.returncode}"]
        raise ClusterError(f"{what} failed: {lines[-1].strip()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_connections(port: int, timeout: float) -> None:
    """Wait until the server answers a connection on 127.0.0.1:`port` (pg_ctl -w waits for it
    to say it is ready; this is what the tests will do)."""
    import psycopg  # the switch's own dependency; imported here so that --help needs nothing

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", connect_timeout=2):
                return
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                raise ClusterError(f"the server on port {port} does not accept connections: {error}".splitlines()[0])
            time.sleep(0.05)


def start(directory: str | Path | None = None, *, search: Sequence[str] | None = None,
          timeout: float = 60) -> Cluster:
    """Make a cluster in `directory` (created, or an existing empty one; default a fresh
    temporary directory), start it on a free port, and wait until it accepts connections.
    On failure nothing is left running, and the directory is removed again if made here."""
    binaries = find_binaries(search)
    user = _run_as()
    made = directory is None or not Path(directory).exists()
    if directory is None:
        path = Path(tempfile.mkdtemp(prefix="cardswitch-pg-"))
    else:
        path = Path(directory).absolute()
        if path.exists() and any(path.iterdir()):
            raise ClusterError(f"{path} is not empty: give a new or an empty directory")
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if user is not None:
            os.chown(path, user.pw_uid, user.pw_gid)
        data = path / "data"
        _run([binaries.initdb, "-D", str(data), "-U", SUPERUSER, "-E", "UTF8", "--locale=C", "--no-sync",
              "--auth=reject"], path, user, "initdb")
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(SETTINGS.format(socket_dir=str(path).replace("'", "''")))
        (data / "pg_hba.conf").write_text(HBA)
        last: ClusterError | None = None
        for _ in range(3):  # a free port may be taken before the server binds it: try another
            port = _free_port()
            with open(data / "postgresql.conf", "a") as conf:
                conf.write(f"port = {port}\n")
            try:
                _run([binaries.pg_ctl, "start", "-D", str(data), "-l", str(path / "postgres.log"), "-w",
                      "-t", str(int(timeout))], path, user, "pg_ctl start")
            except ClusterError as error:
                last = error
                continue
            _wait_for_connections(port, timeout)
            return Cluster(path, port)
        assert last is not None
        log = path / "postgres.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        raise ClusterError(f"{last}{': ' + tail[0] if tail else ''}")
    except BaseException:
        try:
            _stop(path, binaries, user)
        except ClusterError:
            pass  # the first failure is the one to tell
        if made:
            shutil.rmtree(path, ignore_errors=True)
        raise


def _stop(path: Path, binaries: Binaries, user: pwd.struct_passwd | None) -> None:
    data = path / "data"
    if (data / "postmaster.pid").exists():
        _run([binaries.pg_ctl, "stop", "-D", str(data), "-m", "immediate", "-w"], path, user, "pg_ctl stop")


def stop(directory: str | Path, *, search: Sequence[str] | None = None) -> None:
    """Stop the cluster in `directory` at once (immediate shutdown), if it runs, and remove the
    directory."""
    path = Path(directory).absolute()
    if not path.exists():
        return
    if any(path.iterdir()) and not (path / "data" / "PG_VERSION").exists():
        raise ClusterError(f"{path} holds no cluster made by tools.pgcluster: not removing it")
    if (path / "data" / "postmaster.pid").exists():
        _stop(path, find_binaries(search), _run_as())
    shutil.rmtree(path)


def interrupt(directory: str | Path, *, search: Sequence[str] | None = None) -> None:
    """Stop the cluster's server at once, keeping its data (a database that goes away: tests)."""
    _stop(Path(directory).absolute(), find_binaries(search), _run_as())


def resume(directory: str | Path, *, search: Sequence[str] | None = None, timeout: float = 60) -> None:
    """Start an interrupted cluster's server again, on its port, and wait until it accepts
    connections."""
    path = Path(directory).absolute()
    _run([find_binaries(search).pg_ctl, "start", "-D", str(path / "data"), "-l", str(path / "postgres.log"), "-w",
          "-t", str(int(timeout))], path, _run_as(), "pg_ctl start")


@contextmanager
def cluster(directory: str | Path | None = None, *, search: Sequence[str] | None = None,
            timeout: float = 60) -> Iterator[Cluster]:
    """A cluster for the `with` block: started on entering, stopped and removed on leaving."""
    started = start(directory, search=search, timeout=timeout)
    try:
        yield started
    finally:
        stop(started.directory, search=search)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.pgcluster",
        description="Start or stop a throwaway PostgreSQL cluster for tests (trust auth on 127.0.0.1, "
                    "no fsync). As root it runs as the user postgres: use a directory under /tmp.")
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser("start", help="make a cluster in DIR, start it and print its URL")
    start_parser.add_argument("directory", metavar="DIR", help="a new or empty directory for the cluster")
    stop_parser = commands.add_parser("stop", help="stop the cluster in DIR and remove DIR")
    stop_parser.add_argument("directory", metavar="DIR", help="the directory given to start")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            print(start(args.directory).url)
        else:
            stop(args.directory)
    except MissingBinaries as error:
        print(f"pgcluster: error: {error}", file=sys.stderr)
        return 2
    except (ClusterError, OSError) as error:
        print(f"pgcluster: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
