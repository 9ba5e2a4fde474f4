"""The running switches on one journal, and what happens to the work of one that dies.

Every switch registers itself in the journal's `instances` table when it starts and names
itself on every row it opens and every SAF item it queues. On the shared journal (PostgreSQL)
it beats its heart five times per lease (`[switch] instance_lease_ms`, 10 s by default); an
instance silent for a whole lease, or one that stopped, is dead, and the first live instance to claim it (one conditional UPDATE: only one
wins) settles what it left: its pending transactions are reversed or completed exactly as after
a crash (switch.recovery), and its open SAF items become the claimant's to deliver. No
transaction stays pending for ever while one instance runs.

Instances alive at once hold different slots (0 to 9), and each sends its issuers STANs of its
slot's range only, so that two instances never put the same STAN (and field 90) before one
issuer at once.

On the SQLite journal only one process runs, so at start every other instance is dead.

A known limit: an instance cut off from the database for longer than the lease keeps running
while another settles its pending rows (there is no fencing); it cannot answer a terminal
meanwhile (answers wait for the journal), but an issuer's approval arriving for it then would
conflict with the reversal already queued. Keep the lease well above the journal's stalls.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Awaitable, Callable

import attrs
import trio

from switch import logs
from switch.errors import ConfigError
from switch.core.matcher import LAST_STAN
from switch.journal import BatchedJournal
from switch.recovery import Recovered, recover
from switch.vault import KEY_ENV, KEY_FILE

BEATS_PER_LEASE = 5  # heartbeats, and looks for dead instances, within one lease
SLOTS = 10  # instances alive at once on one shared journal ...
STANS_PER_SLOT = 100_000  # ... each sending its issuers STANs of its own: slot K, K00001 to K99999


@attrs.frozen
class Instance:
    id: int
    slot: int  # among the instances alive at once: which STAN range its issuer links use
    stan_range: tuple[int, int]


def register(journal: BatchedJournal, data_key_check: str, lease: float) -> Instance:
    """This process as a new instance of the journal, in the lowest slot no live instance
    holds. Refused (ConfigError) when the journal was written under another data key (PAN
    hashes would not match, sealed reversals could not be opened), or when SLOTS instances
    already run on it."""
    now = time.time()

    def enter(connection) -> Instance:
        connection.execute("INSERT INTO properties (name, value) VALUES ('data_key_check', ?)"
                           " ON CONFLICT (name) DO NOTHING", (data_key_check,))
        known = connection.execute("SELECT value FROM properties WHERE name = 'data_key_check'").fetchone()[0]
        if known != data_key_check:
            raise ConfigError(journal.where, "data key",
                              f"the data key the journal was written under (check value {known}), not"
                              f" {data_key_check}: every instance needs the same {KEY_ENV} or {KEY_FILE}")
        journal.serialise(connection)  # two instances starting at once must not take one slot
        taken = {row[0] for row in connection.execute(
            "SELECT slot FROM instances WHERE stopped_at IS NULL AND recovered_by IS NULL AND heartbeat_at >= ?",
            (now - lease,)).fetchall()} if journal.shared else set()
        slot = next((slot for slot in range(SLOTS) if slot not in taken), None)
        if slot is None:
            raise ConfigError(journal.where, "instances", f"at most {SLOTS} switch instances on one journal")
        me = int(connection.execute(
            "INSERT INTO instances (host, pid, started_at, heartbeat_at, slot) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (socket.gethostname(), os.getpid(), now, now, slot)).fetchone()[0])
        stans = (slot * STANS_PER_SLOT + 1, (slot + 1) * STANS_PER_SLOT - 1) if journal.shared else (1, LAST_STAN)
        return Instance(me, slot, stans)

    return journal.run_now(enter)


def recover_at_start(journal: BatchedJournal, me: int, lease: float, business_date: str) -> Recovered:
    """Settle what dead instances left, before taking traffic: on SQLite everything pending (one
    process per file), on the shared journal what instances found dead now left."""
    if not journal.shared:
        return journal.run_now(lambda connection: _take_over(connection, me, None, business_date))
    return journal.run_now(
        lambda connection: _take_over(connection, me, _claim_dead(connection, me, lease), business_date))


async def watch(journal: BatchedJournal, me: int, lease: float, adopted: Callable[[], Awaitable[None]],
                business_date: Callable[[], str]) -> None:
    """On the shared journal, for as long as the switch runs: beat this instance's heart,
    settle dead instances' work (on today's `business_date()`), and call `adopted()` when SAF
    items became ours."""
    if not journal.shared:
        await trio.sleep_forever()
    while True:
        await trio.sleep(lease / BEATS_PER_LEASE)
        journal.execute("UPDATE instances SET heartbeat_at = ? WHERE id = ?", (time.time(), me))
        try:
            today = business_date()
            recovered = await journal.commit(
                lambda connection: _take_over(connection, me, _claim_dead(connection, me, lease), today))
        except Exception as exc:  # the journal is stalled or failing: the next scan tries again
            logs.warning("instance_scan_failed", error=type(exc).__name__)
            continue
        if recovered.instances:
            await adopted()


def stopped(journal: BatchedJournal, me: int) -> None:
    """A clean stop: another instance may settle at once whatever this one abandoned."""
    journal.execute("UPDATE instances SET stopped_at = ?, heartbeat_at = ? WHERE id = ?", (time.time(), time.time(), me))


def _claim_dead(connection, me: int, lease: float) -> list[int]:
    """The dead instances nobody has claimed yet, now claimed by `me` (only one claimant wins)."""
    horizon = time.time() - lease
    candidates = [row[0] for row in connection.execute(
        "SELECT id FROM instances WHERE id != ? AND recovered_by IS NULL"
        " AND (stopped_at IS NOT NULL OR heartbeat_at < ?)", (me, horizon)).fetchall()]
    return [dead for dead in candidates if connection.execute(
        "UPDATE instances SET recovered_by = ? WHERE id = ? AND recovered_by IS NULL RETURNING id",
        (me, dead)).fetchone() is not None]


def _take_over(connection, me: int, dead: list[int] | None, business_date: str) -> Recovered:
    """Settle the pending rows of `dead` instances (None: of every instance but `me`) and make
    their open SAF items `me`'s."""
    if dead is None:
        connection.execute("UPDATE instances SET recovered_by = ? WHERE id != ? AND recovered_by IS NULL", (me, me))
        recovered = recover(connection, me, None, business_date)
        connection.execute("UPDATE saf SET owner = ? WHERE status IN ('queued', 'retrying')", (me,))
        return recovered
    if not dead:
        return Recovered(0, 0, 0)
    recovered = recover(connection, me, dead, business_date)
    marks = ",".join("?" * len(dead))
    connection.execute(f"UPDATE saf SET owner = ? WHERE owner IN ({marks}) AND status IN ('queued', 'retrying')",
                       (me, *dead))
    logs.warning("instances_taken_over", instances=dead, by=me, reversed=recovered.reversed,
                 completed=recovered.completed, never_sent=recovered.never_sent)
    return Recovered(recovered.reversed, recovered.completed, recovered.never_sent, instances=len(dead))
