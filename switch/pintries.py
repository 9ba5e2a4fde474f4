"""Wrong PINs in a row, per card, kept in the journal.

A card that has used up its PIN tries must stay blocked (75) when the switch restarts, or a
restart would hand every attacker fresh tries. Cards are known only by their PAN hash.

A PIN check takes a try (`take`) before the HSM judges the PIN and then says how it went:
`reset` (correct), `wrong`, or `give_back` (the check could not be made). With one process
(SQLite) the counts live in memory and the journal keeps them for the next start. On the shared
journal (`SharedPinTries`) the database holds the count and taking a try is one conditional
UPDATE, so instances checking one card at once cannot together allow more wrong PINs than the
limit; a crash between taking a try and the HSM's answer costs the card that try.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

import attrs
import trio

from switch.journal import BatchedJournal


@attrs.define
class _CardLock:
    lock: trio.Lock = attrs.Factory(trio.Lock)
    users: int = 0  # holding or waiting


class PinTries:
    def __init__(self, journal: BatchedJournal):
        self.journal = journal
        self._wrong = {row["pan_hash"]: row["wrong"] for row in journal.read("SELECT pan_hash, wrong FROM pin_tries")}
        self._locks: dict[str, _CardLock] = {}

    @asynccontextmanager
    async def held(self, card: str) -> AsyncIterator[None]:
        """The card's PIN check to itself, from reading its count to recording the outcome.

        The two straddle an HSM call: without this, parallel requests for one card would all
        pass the count before any wrong PIN was recorded, and a burst would get more guesses
        than `max_pin_tries`. Only requests for the same card wait on each other, and a card's
        lock is dropped once nobody holds or waits on it, so the table stays as small as the
        number of cards being checked right now."""
        entry = self._locks.setdefault(card, _CardLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[card]

    async def take(self, card: str, limit: int) -> bool:
        """A try for `card`; False when it has had `limit` wrong PINs in a row."""
        return self._wrong.get(card, 0) < limit

    def give_back(self, card: str) -> None:
        """The try taken was not used (no verdict on the PIN)."""

    def wrong(self, card: str) -> int:
        """One more wrong PIN for `card`; returns how many in a row."""
        tries = self._wrong[card] = self._wrong.get(card, 0) + 1
        self.journal.execute(
            "INSERT INTO pin_tries (pan_hash, wrong, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (pan_hash) DO UPDATE SET wrong = excluded.wrong, updated_at = excluded.updated_at",
            (card, tries, time.time()))
        return tries

    def reset(self, card: str) -> None:
        """A correct PIN: the count starts again."""
        if self._wrong.pop(card, None) is not None:
            self.journal.execute("DELETE FROM pin_tries WHERE pan_hash = ?", (card,))


class SharedPinTries(PinTries):
    """The counts in the shared journal only: every try is taken from the database."""

    def __init__(self, journal: BatchedJournal):
        self.journal = journal
        self._wrong = {}  # the try each card holds right now: its count once judged wrong
        self._locks = {}

    async def take(self, card: str, limit: int) -> bool:
        def take_one(connection) -> int | None:
            row = connection.execute(
                "INSERT INTO pin_tries (pan_hash, wrong, updated_at) VALUES (?, 1, ?) ON CONFLICT (pan_hash)"
                " DO UPDATE SET wrong = pin_tries.wrong + 1, updated_at = excluded.updated_at"
                " WHERE pin_tries.wrong < ? RETURNING wrong", (card, time.time(), limit)).fetchone()
            return None if row is None else int(row[0])

        tries = await self.journal.commit(take_one)
        if tries is None:
            return False
        self._wrong[card] = tries
        return True

    def give_back(self, card: str) -> None:
        self._wrong.pop(card, None)
        self.journal.execute("UPDATE pin_tries SET wrong = wrong - 1 WHERE pan_hash = ? AND wrong > 0", (card,))

    def wrong(self, card: str) -> int:
        return self._wrong.pop(card)

    def reset(self, card: str) -> None:
        self._wrong.pop(card, None)
        self.journal.execute("DELETE FROM pin_tries WHERE pan_hash = ?", (card,))


def pin_tries_for(journal: BatchedJournal) -> PinTries:
    return SharedPinTries(journal) if journal.shared else PinTries(journal)
