"""The transaction journal: an embedded SQLite database (WAL) that records every request, its
outcome and the store-and-forward queue, so nothing is lost across crashes and restarts.

Writes never run on the event loop: one writer thread takes everything queued since its last
turn (every few milliseconds) and applies it as a single transaction (group commit). The hot path only enqueues; code
that must know a write is durable (a SAF item before it is relied on, the flush at shutdown)
awaits `commit()` or `flush()`. With WAL and synchronous=NORMAL a
committed write survives the process being killed (kill -9), which is the failure the switch is
built for; a power loss may lose the last moments.

Rows never hold a PAN in clear, nor track, PIN or CVV data: see switch.vault.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable

import trio

from switch import logs

DB_FILE = "journal.db"
BATCH_LIMIT = 2000
BATCH_INTERVAL = 0.005  # seconds between the writer's looks at the queue when nobody waits

# Each entry upgrades the schema by one version; never edit a released entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE transactions (
        trace INTEGER PRIMARY KEY,
        created_at REAL NOT NULL,
        completed_at REAL,
        latency_ms REAL,
        listener TEXT,
        mti TEXT NOT NULL,
        processing_code TEXT,
        amount INTEGER,
        currency TEXT,
        tid TEXT,
        mid TEXT,
        stan TEXT,
        transmitted TEXT,
        rrn TEXT,
        pan_masked TEXT,
        pan_hash TEXT,
        issuer TEXT,
        rc TEXT,
        approval TEXT,
        state TEXT NOT NULL,
        reason TEXT,
        original_trace INTEGER,
        reversed_amount INTEGER NOT NULL DEFAULT 0,
        late_rc TEXT,
        response TEXT
    );
    CREATE INDEX transactions_by_terminal ON transactions (tid, stan, transmitted);
    CREATE INDEX transactions_by_rrn ON transactions (rrn, tid);
    CREATE INDEX transactions_by_time ON transactions (created_at);
    CREATE TABLE saf (
        id INTEGER PRIMARY KEY,
        issuer TEXT NOT NULL,
        trace INTEGER,
        kind TEXT NOT NULL,
        mti TEXT NOT NULL,
        payload BLOB NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        last_error TEXT,
        response_code TEXT
    );
    CREATE INDEX saf_by_issuer ON saf (issuer, status, next_attempt);
    """,
    """
    CREATE TABLE pin_tries (
        pan_hash TEXT PRIMARY KEY,
        wrong INTEGER NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # Field 90 naming the request as the issuer got it (the switch's own STAN): a reversal of an
    # original no longer in memory still names it the way the issuer knows it.
    """
    ALTER TABLE transactions ADD COLUMN sent_as TEXT;
    """,
)

Operation = Callable[[sqlite3.Connection], Any]


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    connection.row_factory = sqlite3.Row
    return connection


def migrate(connection: sqlite3.Connection) -> int:
    """Bring the schema to the newest version; returns that version."""
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        connection.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    return len(MIGRATIONS)


class _Awaited:
    """An operation whose caller waits for the batch that ran it to commit."""

    __slots__ = ("operation", "done", "token", "result", "error")

    def __init__(self, operation: Operation):
        self.operation = operation
        self.done = trio.Event()
        self.token = trio.lowlevel.current_trio_token()
        self.result: Any = None
        self.error: BaseException | None = None


_STOP = object()


class Journal:
    """The journal database of one data directory, and its writer thread.

    The event loop only appends writes to a deque (`execute()`); one long-lived thread wakes
    every few milliseconds, takes everything queued, applies it as one transaction and commits.
    The loop never wakes the thread for an ordinary write (no GIL ping-pong per row) and never
    waits on the disk unless it asks to (`commit()`, `flush()`), which wakes the thread at once.
    """

    def __init__(self, data_dir: Path, interval: float = BATCH_INTERVAL):
        self.path = data_dir / DB_FILE
        data_dir.mkdir(parents=True, exist_ok=True)
        self.connection = connect(self.path)
        self.version = migrate(self.connection)
        self.interval = interval
        self._queue: collections.deque = collections.deque()
        self._wake = threading.Event()
        self.batches = 0

    def read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """A synchronous read, for start-up only (before the writer runs)."""
        return self.connection.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple = ()) -> None:
        """Queue a write; it lands with the next batch. Never blocks."""
        self._queue.append((sql, params))

    async def commit(self, operation: Operation) -> Any:
        """Run `operation(connection)` in the next batch and wait until that batch committed."""
        awaited = _Awaited(operation)
        self._queue.append(awaited)
        self._wake.set()
        await awaited.done.wait()
        if awaited.error is not None:
            raise awaited.error
        return awaited.result

    async def flush(self) -> None:
        await self.commit(lambda connection: None)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Own the writer thread for as long as this task lives; on exit, write what is queued."""
        writer = threading.Thread(target=self._write_forever, name="journal-writer", daemon=True)
        writer.start()
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self._queue.append(_STOP)
            self._wake.set()
            writer.join()

    def _write_forever(self) -> None:
        queued = self._queue
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            batch: list[object] = []
            while queued and len(batch) < BATCH_LIMIT:
                batch.append(queued.popleft())
            if not batch:
                continue
            stop = _STOP in batch
            self._apply([item for item in batch if item is not _STOP])
            if stop:
                return
            if queued:
                self._wake.set()  # more than one batch was waiting: go on at once

    def _apply(self, batch: list) -> None:
        """One transaction for the batch. Whatever fails (a statement, or the disk under
        BEGIN/COMMIT), the thread lives on, the failure is logged and every waiter is woken
        with the error, so nobody waits forever on a journal that cannot write."""
        connection = self.connection
        awaited = [item for item in batch if type(item) is not tuple]
        try:
            connection.execute("BEGIN")
            for item in batch:
                try:
                    if type(item) is tuple:
                        connection.execute(*item)
                    else:
                        item.result = item.operation(connection)
                except sqlite3.Error as exc:
                    if type(item) is not tuple:
                        item.error = exc
                    logs.warning("journal_write_failed", error=str(exc))
            connection.execute("COMMIT")
        except Exception as exc:
            logs.warning("journal_batch_failed", error=f"{type(exc).__name__}: {exc}", rows=len(batch))
            for item in awaited:
                item.error = item.error or exc
            try:
                connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        self.batches += 1
        for item in awaited:
            try:
                item.token.run_sync_soon(item.done.set)
            except trio.RunFinishedError:
                pass  # nobody is left to wake

    def close(self) -> None:
        self.connection.close()
