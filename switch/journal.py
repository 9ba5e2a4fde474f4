"""The transaction journal: every request, its outcome and the store-and-forward queue, so
nothing is lost across crashes and restarts. Two stores share the schema, the queries and the
batching here (`BatchedJournal`): `Journal`, an embedded SQLite database (WAL) for one process,
and switch.pgjournal's PostgreSQL journal, shared by several instances (switch.stores chooses).

The hot path only enqueues writes. Code that must know its writes are durable before it goes on
awaits `durable()`, or hands what comes next to `after_durable()` (a request before it leaves for
its issuer, an answer before it leaves for its terminal): everything queued in that moment is
committed as one batch (group commit), one event per batch shared by every transaction in it
(see `Journal` for where it is committed). What
nobody waits for, a writer thread commits every few milliseconds. With WAL and
synchronous=NORMAL a committed write survives the process being killed (kill -9), which is the
failure the switch is built for; a power loss may lose the last moments.

A batch that cannot be committed (the database locked by another process, a full disk) is not
dropped: it is rolled back and the writer thread tries it again with a growing pause
(`journal_stalled`, then `journal_resumed`), while every transaction waiting on it waits
(terminals get no answer that is not on disk). A statement that fails on its own (a constraint)
is logged and skipped; the rest of its batch commits.

Rows never hold a PAN in clear, nor track, PIN or CVV data: see switch.vault.
"""

from __future__ import annotations

import collections
import itertools
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import trio

from switch import logs
from switch.wire.masking import mask_pan_like

DB_FILE = "journal.db"
BATCH_INTERVAL = 0.005  # seconds between the writer's looks at the queue when nobody waits
RETRY_MIN = 0.05  # seconds before a batch that could not commit is tried again; doubles ...
RETRY_MAX = 1.0  # ... up to this
BUSY_TIMEOUT = 2.0  # seconds SQLite waits for another process's lock before a batch is retried
CHECKPOINT_INTERVAL = 1.0  # seconds between the writer thread's checkpoints of the WAL
# Seconds without any commit before the writer thread commits, on its own, writes nobody waits
# for; under load the loop's group commits take them along, and the two seldom contend.
IDLE_FLUSH = 0.05
# Seconds a stop waits for a stalled journal before it gives up what is still queued: nothing a
# terminal was answered on (answers wait for their rows), only rows of requests never answered.
STOP_GRACE = 5.0

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
    # While a request may be at its issuer without a final answer: the 0420 that undoes it, sealed
    # (switch.vault), so that recovery after a crash can reverse it; cleared with the outcome.
    # `sent_at`: when it was about to leave for the issuer (it may have reached it from then on).
    # On a reversal's own row, `reversed_amount` is what it leaves reversed of its original.
    """
    ALTER TABLE transactions ADD COLUMN reversal BLOB;
    ALTER TABLE transactions ADD COLUMN sent_at REAL;
    """,
    # Risk rules: the acquiring country (field 19, for impossible travel), what the rules said of
    # the request (`risk`: declined or flagged by which rule, shown by `journal list`) and the
    # rules whose counts it is in (`risk_counted`), from which the counts are rebuilt at start.
    """
    ALTER TABLE transactions ADD COLUMN country TEXT;
    ALTER TABLE transactions ADD COLUMN risk TEXT;
    ALTER TABLE transactions ADD COLUMN risk_counted TEXT;
    """,
    # Several instances on one journal (PostgreSQL): each running switch registers itself and
    # beats its heart (`instances`); its rows and SAF items name it, so that another instance
    # can take over what it left when it dies (switch.instances). `request_keys`: the database
    # decides which request first used a terminal's STAN and time (switch.claims). `counters`:
    # blocks of trace numbers handed to instances. `stand_in_usage`: each card's stand-in
    # approvals per issuer and UTC day, counted for every instance. `properties`: what every instance must agree
    # on (the data key's check value, the business date). `business_date`: the day a
    # transaction settles on, the one on which it was decided (switch.core.business).
    """
    CREATE TABLE instances (
        id INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        stopped_at REAL,
        recovered_by INTEGER,
        slot INTEGER NOT NULL
    );
    ALTER TABLE transactions ADD COLUMN instance INTEGER;
    ALTER TABLE transactions ADD COLUMN business_date TEXT;
    ALTER TABLE transactions ADD COLUMN acquirer TEXT;
    CREATE INDEX transactions_by_business_date ON transactions (business_date, tid);
    ALTER TABLE saf ADD COLUMN owner INTEGER;
    CREATE INDEX transactions_pending ON transactions (instance) WHERE state = 'pending';
    CREATE INDEX saf_by_owner ON saf (owner, status);
    CREATE TABLE request_keys (
        tid TEXT NOT NULL,
        stan TEXT NOT NULL,
        transmitted TEXT NOT NULL,
        trace INTEGER NOT NULL,
        claimed_at REAL NOT NULL,
        PRIMARY KEY (tid, stan, transmitted)
    );
    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    CREATE TABLE stand_in_usage (
        issuer TEXT NOT NULL,
        pan_hash TEXT NOT NULL,
        day TEXT NOT NULL,
        count INTEGER NOT NULL,
        amount INTEGER NOT NULL,
        PRIMARY KEY (issuer, pan_hash, day)
    );
    CREATE TABLE properties (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
)

Connection = Any  # a store's connection: sqlite3's, or switch.pgjournal.PgConnection (same calls)
Row = Any  # one of its rows, read by column name
Operation = Callable[[Connection], Any]


# SQLite's module binds int, float, str and bytearray as they are and "adapts" any other value,
# None and bytes included: two failed attribute look-ups each (an AttributeError formatted and
# dropped), 0.7-1 µs a value on the 2-vCPU VM, about a dozen values a transaction. A value whose
# type has an adapter costs one dict look-up and that call instead (docs/performance.md).
sqlite3.register_adapter(type(None), lambda value: value)  # bound as NULL, as before
sqlite3.register_adapter(bytes, bytes)  # bytes(b) is b itself


def connect(path: Path, readonly: bool = False, busy_timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    if readonly:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=busy_timeout)
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

    __slots__ = ("operation", "done", "result", "error")

    def __init__(self, operation: Operation):
        self.operation = operation
        self.done = trio.Event()
        self.result: Any = None
        self.error: BaseException | None = None


_STOP = object()


class _Committed:
    """What a batch's commit releases: the tasks waiting on it (`durable()`) and the callbacks
    queued for it (`after_durable()`), run on the event loop in the order they were queued."""

    __slots__ = ("_event", "callbacks")

    def __init__(self) -> None:
        self._event = trio.Event()
        self.callbacks: list[Callable[[], None]] = []

    def set(self) -> None:
        self._event.set()
        for callback in self.callbacks:
            try:
                callback()
            except Exception as exc:  # one answer's bug must not stop the committer, nor the rest
                logs.warning("internal_error", where="after_durable", error=type(exc).__name__)

    async def wait(self) -> None:
        await self._event.wait()


class BatchedJournal:
    """What every journal store shares: writes queued by the event loop and committed in
    batches, in order, with group commit for whoever waits on durability (`durable()`), and a
    writer thread that commits what nobody waits for and retries a batch that could not be
    committed. A store says how to open its connections and how to apply a batch."""

    shared = False  # True: several instances may use this journal at once (switch.claims)
    version = 0  # the schema version after migrations

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._queue: collections.deque = collections.deque()
        self._wake = threading.Event()
        # Set once the batch that takes what is queued now has committed. Swapped, with taking the
        # queue, under the lock: a write queued before an event was handed out is in its batch.
        self._lock = threading.Lock()
        self._next_batch = _Committed()
        self._committing = threading.Lock()  # held while a batch is applied: batches commit in order
        self._handoff: collections.deque[tuple[list[object], _Committed]] = collections.deque()
        self._inline: Any = None  # the loop's connection, while running (a store that has one)
        self._commit_soon = trio.lowlevel.ParkingLot()
        self._commit_requested = False
        self._token: trio.lowlevel.TrioToken | None = None
        self.batches = 0  # committed since start (the metrics endpoint reports it)
        self._last_commit = 0.0  # time.monotonic() of the last batch committed
        self.stalled = False  # a batch is waiting to be retried by the writer thread
        self._abandon = threading.Event()  # set at a stop that waited STOP_GRACE on a stalled journal

    # -- what a store provides -------------------------------------------------------------

    connection: Any  # the start-up connection: reads, `run_now`, the metrics endpoint's counts
    where = ""  # the store, for log lines (a path, or a URL without its password)

    def _writer_connection(self) -> Any:
        """The connection the writer thread applies batches on."""
        raise NotImplementedError

    def _open_inline(self) -> Any:
        """A connection for group commits on the event loop itself, or None to leave every
        commit to the writer thread."""
        return None

    def _checkpoint(self) -> None:
        """Periodic housekeeping in the writer thread (SQLite: the WAL checkpoint)."""

    def _apply(self, batch: list[object], connection: Any) -> bool:
        raise NotImplementedError

    def _apply_in_writer(self, batch: list[object]) -> bool:
        """The writer thread's attempt at a batch; False to try again after a pause."""
        return self._apply(batch, self._writer_connection())

    begin = "BEGIN"  # how a store starts a transaction that writes

    def run_now(self, operation: Operation) -> Any:
        """Run `operation(connection)` in one transaction, synchronously: start-up only."""
        self.connection.execute(self.begin)
        try:
            result = operation(self.connection)
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")
        return result

    def trace_numbers(self) -> Iterator[int]:
        """The trace numbers this instance gives its requests, from where the journal leaves
        off; never one another instance uses."""
        raise NotImplementedError

    def serialise(self, connection: Connection) -> None:
        """Within a transaction: wait until no other instance is in one that called this too."""

    def close(self) -> None:
        raise NotImplementedError

    # -- the batching both share -----------------------------------------------------------

    def read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """A synchronous read, for start-up only (before the writer runs)."""
        return self.connection.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple = ()) -> None:
        """Queue a write; it lands with the next batch. Never blocks."""
        self._queue.append((sql, params))

    async def durable(self) -> None:
        """Wait until everything queued so far is committed."""
        with self._lock:
            batch = self._next_batch
        self._commit_promptly()
        await batch.wait()

    def after_durable(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the event loop once everything queued so far is committed, never
        before and never for a batch given up at a stop: what follows `durable()` without a
        task parked on it (a task's wake-up is about a twentieth of a request's CPU,
        docs/performance.md). A callback that raises is logged; it must not await."""
        with self._lock:
            self._next_batch.callbacks.append(callback)
        self._commit_promptly()

    def _commit_promptly(self) -> None:
        """Have the batch being gathered committed as soon as the loop has queued what is ready."""
        if self._inline is not None and not self.stalled:
            if not self._commit_requested:
                self._commit_requested = True
                self._commit_soon.unpark()
        else:
            self._wake.set()

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
        """Own the committer and the writer thread for as long as this task lives; on exit,
        write what is queued."""
        self._token = trio.lowlevel.current_trio_token()
        self._inline = self._open_inline()
        writer = threading.Thread(target=self._write_forever, name="journal-writer", daemon=True)
        writer.start()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._commit_inline_forever)
                task_status.started()
                await trio.sleep_forever()
        finally:
            inline, self._inline = self._inline, None
            self._queue.append(_STOP)
            self._wake.set()
            writer.join(STOP_GRACE)
            if writer.is_alive():  # stalled: a database that never comes back must not hold the stop
                self._abandon.set()
                writer.join()
            if inline is not None:
                inline.close()

    async def _commit_inline_forever(self) -> None:
        while True:
            await self._commit_soon.park()
            await trio.lowlevel.checkpoint()  # what else is ready now queues its writes first
            self._commit_requested = False
            inline = self._inline
            if inline is None or self.stalled or not self._committing.acquire(blocking=False):
                self._wake.set()  # the thread is at it: it takes this batch next
                continue
            try:
                batch, done = self._take()
                if batch and not self._apply(batch, inline):
                    self.stalled = True  # locked by another process: the thread retries it
                    logs.warning("journal_stalled", rows=len(batch), retry_s=RETRY_MIN)
                    self._handoff.append((batch, done))
                    self._wake.set()
                    continue
                done.set()
            finally:
                self._committing.release()

    def _take(self) -> tuple[list[object], _Committed]:
        """Everything queued, and what its commit releases."""
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
            done, self._next_batch = self._next_batch, _Committed()
        return batch, done

    def _write_forever(self) -> None:
        checkpointed = time.monotonic()
        while True:
            woken = self._wake.wait(self.interval)
            self._wake.clear()
            if time.monotonic() - checkpointed >= CHECKPOINT_INTERVAL:
                checkpointed = time.monotonic()
                self._checkpoint()
            if not woken and time.monotonic() - self._last_commit < IDLE_FLUSH:
                continue
            with self._committing:
                batch, done = self._handoff.popleft() if self._handoff else self._take()
                stop = _STOP in batch
                if not batch or self._apply_until_committed([item for item in batch if item is not _STOP]):
                    self._wake_waiters([done])
            if stop:
                return

    def _apply_until_committed(self, batch: list[object]) -> bool:
        """True once committed; False when given up at a stop (what waits on it is not released)."""
        pause = RETRY_MIN
        while not self._apply_in_writer(batch):
            if self._abandon.is_set():
                logs.warning("journal_abandoned", rows=len(batch), reason="stopping while the journal is stalled")
                return False
            if not self.stalled:
                self.stalled = True
                logs.warning("journal_stalled", rows=len(batch), retry_s=pause)
            threading.Event().wait(pause)
            pause = min(pause * 2, RETRY_MAX)
        if self.stalled:
            self.stalled = False
            logs.event("journal_resumed", rows=len(batch))
        return True

    def _committed(self, batch: list[object]) -> None:
        """A batch is committed: count it and wake whoever waits on one of its operations."""
        self.batches += 1
        self._last_commit = time.monotonic()
        self._wake_waiters([item.done for item in batch if isinstance(item, _Awaited)])

    def _wake_waiters(self, events: list[trio.Event] | list[_Committed]) -> None:
        token = self._token
        if token is None:
            return
        for event in events:
            try:
                token.run_sync_soon(event.set)
            except trio.RunFinishedError:
                pass  # nobody is left to wake


def apply_item(connection: Connection, item: object) -> None:
    """One queued write, or an awaited operation (its result kept for its caller)."""
    if type(item) is tuple:
        connection.execute(*item)
    else:
        assert isinstance(item, _Awaited)
        item.result = item.operation(connection)


class Journal(BatchedJournal):
    """The embedded journal: one SQLite database (WAL) in the data directory, for one process.

    The event loop only appends writes to a deque (`execute()`). When a transaction must know
    its writes are on disk (`durable()`), the loop's committer takes everything queued in that
    moment (every transaction ready at once joins: group commit) and commits it on the loop's
    own connection: in WAL mode without a sync, a commit is a write to the page cache, tens of
    microseconds, cheaper than handing the batch to a thread and back (measured in
    docs/performance.md). It never waits there: a database locked by another process fails at
    once (busy timeout 0), and the batch goes to the writer thread, which retries it with
    backoff while the switch is `stalled` (every commit goes through the thread until one
    succeeds). The thread also commits, every few milliseconds, what nobody waits for, and
    checkpoints the WAL (the one step that syncs to disk) off the loop. Whoever applies a batch
    holds one lock, so batches commit in the order they were taken.
    """

    def __init__(self, data_dir: Path, interval: float = BATCH_INTERVAL):
        super().__init__(interval)
        self.begin = "BEGIN IMMEDIATE"  # the write lock at once: a locked file fails here, not midway
        self.path = data_dir / DB_FILE
        self.where = str(self.path)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.connection = connect(self.path)
        self.version = migrate(self.connection)

    def trace_numbers(self) -> Iterator[int]:
        """One process per SQLite journal: on from the highest trace it holds."""
        last = self.read("SELECT max(trace) AS last FROM transactions")[0]["last"] or 0
        return itertools.count(last + 1)

    def _writer_connection(self) -> sqlite3.Connection:
        return self.connection

    def _open_inline(self) -> sqlite3.Connection:
        inline = connect(self.path, busy_timeout=0)
        inline.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints sync: the thread's job
        return inline

    def _checkpoint(self) -> None:
        try:
            self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            logs.warning("journal_checkpoint_failed", error=str(exc))

    def _apply(self, batch: list[object], connection: sqlite3.Connection) -> bool:
        """One transaction for the batch; False when it could not be committed (and was rolled
        back, to be tried again). Awaited operations get their result or their own error."""
        try:
            connection.execute(self.begin)
            for item in batch:
                try:
                    apply_item(connection, item)
                except sqlite3.OperationalError:
                    raise  # locked, I/O: the whole batch waits and is tried again
                except Exception as exc:  # a constraint, or a bug in an operation: that item's own error
                    if isinstance(item, _Awaited):
                        item.error = exc
                    logs.warning("journal_write_failed", error=mask_pan_like(f"{type(exc).__name__}: {exc}"))
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            logs.warning("journal_batch_failed", error=f"{type(exc).__name__}: {exc}", rows=len(batch))
            try:
                connection.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            for item in batch:
                if isinstance(item, _Awaited):
                    item.error = None
            return False
        self._committed(batch)
        return True

    def close(self) -> None:
        self.connection.close()
