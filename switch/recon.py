"""Reconciliation against an issuer: its ledger (what it booked: debits, credits, reversals)
against the switch's journal for one business date, transaction by transaction.

A transaction is known on both sides by the MTI, STAN and transmission time under which the
issuer got it (the switch's `sent_as`, its field 90 for a reversal; an advice's for a stand-in
approval). For each, the net money moved: the switch's approved amount less what was reversed
(refunds negative; what was declined, failed or timed out moved nothing, and its reversal at the
issuer must leave nothing there either), the issuer's booked amount less its reversals. Equal:
matched. Only at the switch (with money moved): missing at the issuer. Only at the issuer, within
the day's hours and unknown to the journal: missing at the switch. On both sides, unequal: an
amount difference.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs

from switch.core.reconciliation import CREDIT_KINDS
from switch.errors import UsageError
from switch.journal import Connection

Key = tuple[str, str, str]  # MTI (its class: 0200, 0220), STAN, transmission time, as the issuer got them
MONEY_STATES = ("approved", "stood_in", "reversed", "partially_reversed")


@attrs.frozen
class SwitchEntry:
    trace: int
    net: int  # minor units; refunds negative


@attrs.define
class IssuerEntry:
    sign: int = 1
    booked: int = 0
    reversed: int = 0
    time: float = 0.0
    card: str = ""

    @property
    def net(self) -> int:
        return self.sign * (self.booked - self.reversed)


@attrs.frozen
class ReconResult:
    matched: int
    missing_at_issuer: list[dict]
    missing_at_switch: list[dict]
    amount_differences: list[dict]

    @property
    def clean(self) -> bool:
        return not (self.missing_at_issuer or self.missing_at_switch or self.amount_differences)

    def as_dict(self) -> dict:
        return {"clean": self.clean, **attrs.asdict(self)}


def key_of(mti: str, stan: str, transmitted: str) -> Key:
    return (mti[:3] + "0", stan, transmitted)


def switch_side(connection: Connection, issuer: str, business_date: str) -> dict[Key, SwitchEntry]:
    """The business date's requests the issuer got, with the money each moved by the journal."""
    marks = ", ".join(f"'{state}'" for state in MONEY_STATES)
    entries = {}
    for trace, sent_as, kind, amount, reversed_amount, moved in connection.execute(
            "SELECT trace, sent_as, substr(processing_code, 1, 2), amount, reversed_amount,"
            f" CASE WHEN state IN ({marks}) THEN 1 ELSE 0 END FROM transactions"
            " WHERE issuer = ? AND business_date = ? AND mti IN ('0200', '0220') AND sent_as IS NOT NULL",
            (issuer, business_date)).fetchall():
        net = ((amount or 0) - (reversed_amount or 0)) * (-1 if kind in CREDIT_KINDS else 1) if moved else 0
        entries[key_of(sent_as[0:4], sent_as[4:10], sent_as[10:20])] = SwitchEntry(trace, net)
    return entries


def day_hours(connection: Connection, business_date: str) -> tuple[float, float] | None:
    """From the first request of the business date to the last answer (wall clock)."""
    row = connection.execute("SELECT min(created_at), max(completed_at) FROM transactions WHERE business_date = ?",
                             (business_date,)).fetchone()
    return (row[0], row[1]) if row is not None and row[0] is not None and row[1] is not None else None


def journal_knows(connection: Connection, issuer: str, key: Key) -> bool:
    """The journal has this request on any business date (then it is not the day's to report)."""
    return connection.execute(
        "SELECT 1 FROM transactions WHERE issuer = ? AND substr(sent_as, 5, 6) = ? AND substr(sent_as, 11, 10) = ?"
        " AND substr(sent_as, 1, 3) = ? LIMIT 1", (issuer, key[1], key[2], key[0][:3])).fetchone() is not None


def issuer_side(ledger: list[dict]) -> dict[Key, IssuerEntry]:
    """The issuer's net per transaction: what it booked, less its reversals."""
    entries: dict[Key, IssuerEntry] = {}
    for line in ledger:
        if line["kind"] == "reversal":
            of = line["of"]
            entries.setdefault(key_of(of[0], of[1], of[2]), IssuerEntry()).reversed += int(line["amount"])
            continue
        entry = entries.setdefault(key_of(*line["key"]), IssuerEntry())
        entry.sign = -1 if line["kind"] == "credit" else 1
        entry.booked += int(line["amount"])
        entry.time, entry.card = float(line["time"]), line.get("card", "")
    return entries


def reconcile(connection: Connection, issuer: str, business_date: str, ledger: list[dict]) -> ReconResult:
    ours = switch_side(connection, issuer, business_date)
    theirs = issuer_side(ledger)
    hours = day_hours(connection, business_date)
    matched, at_issuer, at_switch, differ = 0, [], [], []
    for key, entry in sorted(ours.items()):
        name = " ".join(key)
        booked = theirs.get(key)
        if booked is None:
            if entry.net:
                at_issuer.append({"key": name, "trace": entry.trace, "amount": entry.net})
        elif booked.net == entry.net:
            matched += 1
        else:
            differ.append({"key": name, "trace": entry.trace, "switch": entry.net, "issuer": booked.net})
    for key, booked in sorted(theirs.items()):
        if key in ours or not booked.net or hours is None or not hours[0] <= booked.time <= hours[1]:
            continue
        if not journal_knows(connection, issuer, key):
            at_switch.append({"key": " ".join(key), "amount": booked.net, "card": booked.card})
    return ReconResult(matched, at_issuer, at_switch, differ)


def read_ledger(path: Path) -> list[dict]:
    """An issuer's ledger file (JSON lines); a line that is not an entry: one-line error naming it."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the ledger ({exc.strerror})") from None
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            valid = entry["kind"] in ("debit", "credit", "reversal") and int(entry["amount"]) >= 0 and (
                len(entry["of"]) == 3 if entry["kind"] == "reversal" else len(entry["key"]) == 3)
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            raise UsageError(f"{path}:{number}: not a ledger entry (kind, amount, key or of expected)")
        entries.append(entry)
    return entries
