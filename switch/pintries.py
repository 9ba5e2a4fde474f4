"""Wrong PINs in a row, per card, kept in the journal.

A card that has used up its PIN tries must stay blocked (75) when the switch restarts, or a
restart would hand every attacker fresh tries. Cards are known only by their PAN hash.
"""

from __future__ import annotations

import time

from switch.journal import Journal


class PinTries:
    def __init__(self, journal: Journal):
        self.journal = journal
        self._wrong = {row["pan_hash"]: row["wrong"] for row in journal.read("SELECT pan_hash, wrong FROM pin_tries")}

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
