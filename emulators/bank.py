"""The issuer emulator's bank: card accounts and real authorisation decisions, free of I/O.

Accounts come from a TOML card file. A purchase (0200) debits the balance, an authorisation
(0100) only checks it, a refund credits it, a reversal (0400) gives back what the reversed debit
took, an approved financial advice (0220) debits once however often it is repeated. Fault rules (latency, no reply, closed connection) are looked up per card or per amount, so
tests and the demo can make an issuer misbehave on purpose. `crash_after_decide` books the
decision and then kills the whole issuer process before it answers (emulators.issuer), the way a
host dies between its database commit and its reply.

The books (balances, open debits, reversals and advices applied) live in memory; `snapshot()` and
`restore()` let the issuer emulator keep them in a file (`[issuer] books`), so a restarted issuer
still knows what it approved before it was killed.
"""

from __future__ import annotations

import collections
import datetime
import json
import secrets
import string
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from switch.core.messages import card_pan
from switch.tomlfile import Table
from switch.wire.masking import mask_pan
from switch.wire.message import Message, response_mti

STATUS_CODES = {"active": "00", "lost": "41", "stolen": "43", "blocked": "62"}
FAULT_ACTIONS = ("none", "no_reply", "close", "crash_after_decide")
ECHO = ("2", "3", "4", "7", "11", "12", "13", "32", "37", "41", "42", "49")
APPROVAL_ALPHABET = string.ascii_uppercase + string.digits


@attrs.frozen
class Fault:
    """How the emulator misbehaves for a request: wait `latency` seconds, then `action`.

    By default only authorisations and purchases misbehave, so that the reversals and advices
    the switch sends afterwards can get through; `mtis` widens or narrows that.
    """

    latency: float = 0.0
    action: str = "none"
    mtis: frozenset[str] = frozenset({"0100", "0200"})


NO_FAULT = Fault()


@attrs.define
class Account:
    pan: str
    expiry: str  # YYMM
    balance: int  # minor units
    currency: str
    status: str = "active"
    daily_limit: int | None = None
    spent_today: int = 0
    fault: Fault = NO_FAULT
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)  # demo data (outcome, pin ...)


def parse_fault(table: Table) -> Fault:
    return Fault(
        latency=table.get("latency_ms", int, 0, "milliseconds, 0 or more", lambda v: v >= 0) / 1000,
        action=table.get("fault", str, "none", f"one of {', '.join(FAULT_ACTIONS)}",
                         lambda v: v in FAULT_ACTIONS),
        mtis=frozenset(table.get("fault_mtis", list, ["0100", "0200"], "an array of 4-digit MTIs",
                                 lambda v: all(isinstance(m, str) and len(m) == 4 and m.isdigit() for m in v))),
    )


def parse_account(table: Table) -> Account:
    account = Account(
        pan=table.get("pan", str, expected="12 to 19 digits", check=lambda v: v.isdigit() and 12 <= len(v) <= 19),
        expiry=table.get("expiry", str, expected="YYMM", check=lambda v: v.isdigit() and len(v) == 4),
        balance=table.get("balance", int, 0, "minor units, an integer"),
        currency=table.get("currency", str, "978", "3 digits (ISO 4217 numeric)",
                           lambda v: v.isdigit() and len(v) == 3),
        status=table.get("status", str, "active", f"one of {', '.join(STATUS_CODES)}",
                         lambda v: v in STATUS_CODES),
        daily_limit=table.get("daily_limit", int, None, "minor units, an integer"),
        fault=parse_fault(table),
    )
    account.extra = table.unread()
    return account


@attrs.frozen
class AmountRule:
    amount: int
    fault: Fault


class Bank:
    """Accounts by PAN, with the decisions an issuer host makes."""

    def __init__(self, accounts: list[Account], rules: Iterable[AmountRule] = (), today=None):
        self.accounts = {account.pan: account for account in accounts}
        self.rules = {rule.amount: rule.fault for rule in rules}
        self._today = today or (lambda: datetime.datetime.now(datetime.timezone.utc).date())
        self._debits: dict[tuple[str, int], int] = {}  # (pan, amount) -> open approved debits
        # Field 90's MTI, STAN and time of a reversal whose original has not arrived (yet): a
        # reversal can overtake its original (the switch reverses at once what timed out), and
        # the original is then approved without taking the money, as issuers do.
        self._reversed_early: set[tuple[str, str, str]] = set()
        self.reversals: set[tuple[str, str | None]] = set()  # (pan, field 90) already applied
        self.advices: set[tuple] = set()  # advices already booked
        self.advised: collections.deque[Message] = collections.deque(maxlen=1000)  # advices as received
        self._day = self._today()
        # What moved money, entry by entry, for reconciliation with the switch (`cardswitch
        # recon`); kept only when asked for (`keep_ledger`), a bench's millions are not.
        self.ledger: list[dict[str, Any]] | None = None
        self._ledger_file: Path | None = None

    def keep_ledger(self, path: Path | None = None) -> None:
        """Keep the ledger in memory, and append each entry to `path` (JSON lines) when given."""
        self.ledger = []
        self._ledger_file = path

    def _book(self, kind: str, message: Message, amount: int, **more: Any) -> None:
        """One ledger entry: a debit or credit under the request's MTI, STAN and time as received
        (the switch's field 90 for it), or a reversal of one (`of`). Cards masked."""
        if self.ledger is None:
            return
        entry = {"time": round(time.time(), 3), "kind": kind, "amount": amount,
                 "key": [message.mti[:3] + "0", message.get("11", ""), message.get("7", "")],
                 "card": mask_pan(card_pan(message) or ""), **more}
        self.ledger.append(entry)
        if self._ledger_file is not None:
            with self._ledger_file.open("a") as handle:
                handle.write(json.dumps(entry) + "\n")

    def fault_for(self, request: Message) -> Fault:
        account = self.accounts.get(card_pan(request) or "")
        fault = NO_FAULT
        if account is not None and account.fault != NO_FAULT:
            fault = account.fault
        else:
            amount = request.get("4")
            if amount and amount.isdigit():
                fault = self.rules.get(int(amount), NO_FAULT)
        return fault if request.mti in fault.mtis else NO_FAULT

    def decide(self, request: Message) -> Message:
        """The issuer's answer to one request."""
        if request.mti in ("0800", "0820"):
            return self._reply(request, "00", keep=("7", "11", "70"))
        if request.mti in ("0400", "0401", "0420", "0421"):
            return self._reverse(request)
        if request.mti in ("0120", "0121", "0220", "0221"):
            return self._advice(request)
        if request.mti not in ("0100", "0200"):
            return self._reply(request, "12")
        self._roll_day()
        account = self.accounts.get(card_pan(request) or "")
        if account is None:
            return self._reply(request, "14")
        code = self._check(account, request)
        if code != "00":
            return self._reply(request, code)
        amount = int(request.get("4", "0"))
        processing = request.get("3", "000000")[:2]
        response = self._reply(request, "00")
        response["38"] = "".join(secrets.choice(APPROVAL_ALPHABET) for _ in range(6))
        if processing == "31":
            response["54"] = f"0001{account.currency}C{account.balance:012d}"
        elif processing == "20":
            account.balance += amount
            if request.mti == "0200":
                self._book("credit", request, amount, approval=response["38"])
        elif request.mti == "0200":
            key = (request.mti, request.get("11", ""), request.get("7", ""))
            self._book("debit", request, amount, approval=response["38"])
            if key in self._reversed_early:
                self._reversed_early.discard(key)
                self._book("reversal", request, amount, of=list(key))  # reversed before it arrived
            else:
                self._debit(account, amount)
        return response

    def _debit(self, account: Account, amount: int) -> None:
        account.balance -= amount
        account.spent_today += amount
        key = (account.pan, amount)
        self._debits[key] = self._debits.get(key, 0) + 1

    def _advice(self, request: Message) -> Message:
        """An advice: what the switch (stand-in) or a terminal approved for us. A purchase (0220)
        is booked once, however often the advice is repeated (0221). The latest are kept as
        received, so tests can see what reached the issuer."""
        self.advised.append(request)
        key = (request.mti[:3], card_pan(request), request.get("7"), request.get("37"), request.get("4"))
        account = self.accounts.get(card_pan(request) or "")
        if key not in self.advices and request.get("39") == "00":
            self.advices.add(key)
            if account is not None and request.mti[:3] == "022":
                self._debit(account, int(request.get("4", "0") or 0))
                self._book("debit", request, int(request.get("4", "0") or 0), approval=request.get("38"))
        return self._reply(request, "00")

    def _check(self, account: Account, request: Message) -> str:
        if account.status != "active":
            return STATUS_CODES[account.status]
        if self._expired(account, request):
            return "54"
        if request.get("3", "00")[:2] in ("20", "31"):
            return "00"
        amount = int(request.get("4", "0"))
        if amount > account.balance:
            return "51"
        if account.daily_limit is not None and account.spent_today + amount > account.daily_limit:
            return "61"
        return "00"

    def _expired(self, account: Account, request: Message) -> bool:
        today = self._today()
        now = f"{today.year % 100:02d}{today.month:02d}"
        presented = request.get("14") or account.expiry
        return presented < now or account.expiry < now

    def _reverse(self, request: Message) -> Message:
        """Give back what the reversed debit took (less field 95's replacement amount for a
        partial reversal), once per original however often the reversal is repeated."""
        pan = card_pan(request) or ""
        amount = int(request.get("4", "0") or 0)
        account = self.accounts.get(pan)
        original = (pan, request.get("90"))
        key = (pan, amount)
        if original not in self.reversals and account is not None and not self._debits.get(key):
            data = request.get("90", "")
            self._reversed_early.add((data[0:4], data[4:10], data[10:20]))
        if original not in self.reversals and account is not None and self._debits.get(key):
            self.reversals.add(original)
            replacement = request.get("95", "")[:12]
            refund = amount - (int(replacement) if replacement.isdigit() else 0)
            self._debits[key] -= 1
            account.balance += refund
            data = request.get("90", "")
            self._book("reversal", request, refund, of=[data[0:4], data[4:10], data[10:20]])
            account.spent_today = max(0, account.spent_today - refund)
        return self._reply(request, "00")

    def snapshot(self) -> dict[str, Any]:
        """The books as plain JSON data (what `restore` takes back)."""
        return {
            "day": self._day.isoformat(),
            "accounts": {pan: [a.balance, a.spent_today] for pan, a in self.accounts.items()},
            "debits": [[pan, amount, count] for (pan, amount), count in self._debits.items() if count],
            "reversed_early": sorted(list(key) for key in self._reversed_early),
            "reversals": sorted([pan, data] for pan, data in self.reversals),
            "advices": [list(key) for key in self.advices],
        }

    def restore(self, books: dict[str, Any]) -> None:
        """Take back the books a `snapshot` saved (accounts not in this card file are ignored)."""
        self._day = datetime.date.fromisoformat(books["day"])
        for pan, (balance, spent) in books["accounts"].items():
            if pan in self.accounts:
                self.accounts[pan].balance, self.accounts[pan].spent_today = balance, spent
        self._debits = {(pan, amount): count for pan, amount, count in books["debits"]}
        self._reversed_early = {tuple(key) for key in books["reversed_early"]}
        self.reversals = {(pan, data) for pan, data in books["reversals"]}
        self.advices = {tuple(key) for key in books["advices"]}

    def _roll_day(self) -> None:
        today = self._today()
        if today != self._day:
            self._day = today
            for account in self.accounts.values():
                account.spent_today = 0

    @staticmethod
    def _reply(request: Message, code: str, keep: tuple[str, ...] = ECHO) -> Message:
        fields = {f: request[f] for f in keep if f in request}
        fields["39"] = code
        return Message(response_mti(request.mti), fields)
