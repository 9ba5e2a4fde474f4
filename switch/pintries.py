"""Wrong PINs in a row, per card, kept in the journal.

A card that has used up its PIN tries must stay blocked (75) when the switch restarts, or a
restart would hand every attacker fresh tries. Cards are known only by their PAN hash.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

import attrs
import trio

from switch.journal import Journal


@attrs.define
class _CardLock:
    lock: trio.Lock = attrs.Factory(trio.Lock)
    users: int = 0  # holding or waiting


class PinTries:
    def __init__(self, journal: Journal):
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

    def count(self, card: str) -> int:
        return self._wrong.get(card, 0)

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
