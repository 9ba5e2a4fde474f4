"""The PostgreSQL server `cardswitch bench --postgres URL|auto` measures the shared journal on.

`auto` starts a throwaway cluster (tools.pgcluster) for the run and stops it at the end; its
postmaster is a process of this machine, so the CPU time of its process tree (the postmaster,
one backend per switch connection, the WAL writer and the rest) can be read from /proc and
counted per transaction, like the switch's. A URL names a server elsewhere, whose CPU is not
ours to read. Either way every configuration measured gets a fresh database of its own
(`cardswitch_bench_<random hex>`), so that no run starts on the rows of the one before; it is
dropped once that configuration's switch has stopped, connections still in it or not.
"""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urlsplit

import attrs

from switch.errors import UsageError
from switch.stores import display_url, is_postgres_url
from tools import pgcluster
from tools.load.processes import tree_cpu_seconds

if TYPE_CHECKING:
    from psycopg import sql

AUTO = "auto"
CONNECT_TIMEOUT = 10  # seconds


def check_option(value: str) -> None:
    """`--postgres` takes `auto` or a postgresql:// URL (what `serve --journal` takes)."""
    if value != AUTO and not is_postgres_url(value):
        raise UsageError(f"--postgres: expected auto or a postgresql:// URL, got {display_url(value)!r}")


def database_url(server_url: str, name: str) -> str:
    """`server_url` with its database replaced by `name` (user, password, host and options kept)."""
    return urlsplit(server_url)._replace(path="/" + name).geturl()


@attrs.frozen
class Server:
    url: str  # a database on it to connect to as a superuser: CREATE and DROP DATABASE
    cluster: pgcluster.Cluster | None = None  # with `auto`: the cluster started for the run

    def postmaster_pid(self) -> int | None:
        """The cluster's postmaster (first line of DATA/postmaster.pid); None for a server elsewhere."""
        if self.cluster is None:
            return None
        return int((Path(self.cluster.directory) / "data" / "postmaster.pid").read_text().split()[0])

    def cpu_seconds(self) -> float | None:
        """CPU time so far of the cluster's whole process tree; None when it is not ours to read."""
        pid = self.postmaster_pid()
        return None if pid is None else tree_cpu_seconds(pid)

    @contextmanager
    def database(self) -> Iterator[str]:
        """A fresh database for one configuration: its URL, dropped again on leaving. Failing
        either is a one-line error naming the server (a dropped one also names the database
        left behind), not a traceback minutes into a run."""
        from psycopg import sql

        name = f"cardswitch_bench_{secrets.token_hex(8)}"
        self._administer(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)), "cannot create a database")
        try:
            yield database_url(self.url, name)
        finally:
            self._administer(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
                             f"cannot drop the database {name}: drop it by hand")

    def _administer(self, statement: "sql.Composed", what: str) -> None:
        """Run one statement in autocommit (CREATE and DROP DATABASE refuse a transaction)."""
        import psycopg

        problem = None
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as admin:
                admin.execute(statement)
        except psycopg.Error as error:
            problem = _first_line(error, self.url)
        if problem is not None:
            raise UsageError(f"--postgres {display_url(self.url)}: {what} ({problem})")


@contextmanager
def server(option: str) -> Iterator[Server]:
    """The server `--postgres` names, checked before anything is measured: a cluster started
    here for `auto` (stopped and removed on leaving), or the URL's, which must answer. Both
    failures are one-line usage errors; a URL is shown without its password."""
    check_option(option)
    if option == AUTO:
        try:
            cluster = pgcluster.start()
        except pgcluster.ClusterError as error:
            raise UsageError(f"--postgres auto: {error}") from None
        try:
            yield Server(cluster.url, cluster)
        finally:
            pgcluster.stop(cluster.directory)
        return
    import psycopg

    problem, allowed = None, False
    try:
        with psycopg.connect(option, connect_timeout=CONNECT_TIMEOUT) as connection:
            row = connection.execute("SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user").fetchone()
            allowed = bool(row and row[0])
    except psycopg.Error as error:
        problem = _first_line(error, option)
    if problem is not None:
        raise UsageError(f"--postgres {display_url(option)}: does not answer ({problem})")
    if not allowed:  # found now, not after the SQLite run
        raise UsageError(f"--postgres {display_url(option)}: its user may not create databases (needs CREATEDB)")
    yield Server(option)


def _first_line(error: Exception, url: str) -> str:
    """The driver's message, first line, with the URL's password masked wherever quoted back."""
    lines = str(error).strip().splitlines()
    problem = lines[0] if lines else type(error).__name__
    password = urlsplit(url).password
    return problem.replace(password, "***") if password else problem
