"""Which journal store a switch uses: the embedded SQLite file in its data directory (one
process), or a PostgreSQL server shared by several instances (`[switch] journal = URL`).
psycopg is imported only when PostgreSQL is used."""

from __future__ import annotations

import sqlite3
from urllib.parse import urlsplit, urlunsplit

from switch.errors import ConfigError
from switch.journal import BatchedJournal, Journal

SCHEMES = ("postgresql://", "postgres://")
JOURNAL_ENV = "CARDSWITCH_JOURNAL"  # the journal's URL for `serve`, when not on its command line


def is_postgres_url(text: str) -> bool:
    return text.startswith(SCHEMES)


def display_url(url: str) -> str:
    """The URL without its password, for log lines and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def open_journal(config) -> BatchedJournal:
    """The configured journal, migrated to the newest schema; a one-line ConfigError naming
    `switch.journal` or `switch.data_dir` when it cannot be opened."""
    if config.journal:
        import psycopg

        from switch.pgjournal import PostgresJournal
        try:
            return PostgresJournal(config.journal)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(config.source, "switch.journal",
                              f"a reachable PostgreSQL database ({display_url(config.journal)}: {reason})") from None
    try:
        return Journal(config.data_dir)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(config.source, "switch.data_dir",
                          f"a writable directory for the journal ({config.data_dir}: {exc})") from None
