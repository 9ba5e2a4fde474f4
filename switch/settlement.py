"""What moved money on a business date, read from the journal: the one source of the 0500
reconciliation totals, `cardswitch settle`'s net positions and the settlement files written at
cutover.

A movement is an approved purchase, cash withdrawal or refund (0200/0220; approved, stood in,
or reversed since), or a terminal's reversal of one, by what it took off its original (a partial
reversal by its part; a reversal that found nothing left to take counts nowhere). Each belongs to
the business date on which it was decided. Declined, failed and timed-out requests move nothing
(what timed out the switch reversed at the issuer itself). Amounts are integers in minor units,
never floats; each currency's exponent (ISO 4217) is applied only to show them.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import attrs

from switch.core.reconciliation import CREDIT_KINDS, DEBIT_KINDS, Totals
from switch.journal import Connection

# ISO 4217 minor units of the numeric codes a switch meets most; any other currency is shown with 2.
EXPONENTS = {"978": 2, "840": 2, "826": 2, "756": 2, "124": 2, "036": 2, "392": 0, "410": 0, "048": 3,
             "414": 3, "512": 3, "788": 3, "953": 0, "952": 0}
APPROVED_STATES = "('approved', 'stood_in', 'reversed', 'partially_reversed')"
FILE_COLUMNS = ("trace", "decided_at", "kind", "mti", "processing_code", "terminal", "acquirer", "amount",
                "currency", "approval", "stood_in")


@attrs.frozen
class Movement:
    trace: int
    decided_at: float
    reversal: bool
    mti: str
    kind: str  # the processing code's first two digits: 00/01 debit, 20 credit
    amount: int  # minor units: what it moved (a reversal: what it took off)
    issuer: str | None
    acquirer: str | None
    terminal: str | None
    currency: str | None
    approval: str | None
    stood_in: bool

    @property
    def side(self) -> str | None:
        return "debit" if self.kind in DEBIT_KINDS else "credit" if self.kind in CREDIT_KINDS else None


def movements(connection: Connection, business_date: str, **matching: str) -> list[Movement]:
    """Every movement of `business_date`, optionally only those whose `tid`, `acquirer`,
    `currency` or `issuer` column has the given value."""
    conditions = {"business_date": business_date, **matching}
    params = tuple(conditions.values())

    def where(alias: str) -> str:
        return " AND ".join(f"{alias}{column} = ?" for column in conditions)

    found = [Movement(row[0], row[1], False, row[2], row[3], row[4] or 0, row[5], row[6], row[7], row[8], row[9],
                      (row[9] or "").startswith("S"))
             for row in connection.execute(
                 "SELECT trace, completed_at, mti, substr(processing_code, 1, 2), amount, issuer, acquirer, tid,"
                 f" currency, approval FROM transactions WHERE {where('')} AND mti IN ('0200', '0220')"
                 f" AND state IN {APPROVED_STATES} ORDER BY completed_at, trace", params).fetchall()]
    for row in connection.execute(
            "SELECT r.trace, r.completed_at, r.mti, substr(o.processing_code, 1, 2), r.reversed_amount - coalesce(("
            "SELECT max(p.reversed_amount) FROM transactions p WHERE p.original_trace = r.original_trace"
            " AND p.mti IN ('0400', '0420') AND p.state = 'approved' AND p.created_at < r.created_at), 0),"
            " o.issuer, r.acquirer, r.tid, r.currency, o.approval FROM transactions r"
            f" JOIN transactions o ON o.trace = r.original_trace WHERE {where('r.')}"
            " AND r.mti IN ('0400', '0420') AND r.state = 'approved' AND o.mti IN ('0200', '0220')"
            " ORDER BY r.completed_at, r.trace", params).fetchall():
        if row[4] > 0:
            found.append(Movement(row[0], row[1], True, row[2], row[3], row[4], row[5], row[6], row[7], row[8],
                                  row[9], (row[9] or "").startswith("S")))
    return found


def totals_of(moved: list[Movement]) -> Totals:
    """Reconciliation totals (0500): counts and amounts per side and direction."""
    counts = {"debits": 0, "debit_reversals": 0, "credits": 0, "credit_reversals": 0}
    amounts = dict.fromkeys(counts, 0)
    for movement in moved:
        if movement.side is None:
            continue
        name = f"{movement.side}_reversals" if movement.reversal else f"{movement.side}s"
        counts[name] += 1
        amounts[name] += movement.amount
    return Totals(**counts, **{f"{name}_amount": amount for name, amount in amounts.items()})


def positions(moved: list[Movement]) -> list[dict]:
    """Net positions per issuer, acquirer and terminal, each per currency: counts and amounts
    of approvals (debits), reversals, refunds and stand-in approvals, and the net (debits less
    refunds, both after their reversals), in minor units with the currency's exponent."""
    groups: dict[tuple[str, str, str], dict] = {}
    for movement in moved:
        if movement.side is None:
            continue
        for by, name in (("issuer", movement.issuer), ("acquirer", movement.acquirer), ("terminal", movement.terminal)):
            currency = movement.currency or ""
            group = groups.setdefault((by, name or "", currency), _empty(by, name or "", currency))
            _add(group, movement)
    return [groups[key] for key in sorted(groups)]


def _empty(by: str, name: str, currency: str) -> dict:
    return {"by": by, "name": name, "currency": currency, "exponent": EXPONENTS.get(currency, 2),
            "approvals": 0, "approved_amount": 0, "reversals": 0, "reversed_amount": 0,
            "refunds": 0, "refunded_amount": 0, "stand_in_approvals": 0, "stand_in_amount": 0, "net_amount": 0}


def _add(group: dict, movement: Movement) -> None:
    sign = -1 if movement.reversal else 1
    if movement.side == "debit":
        key = "reversals" if movement.reversal else "approvals"
        group[key] += 1
        group["reversed_amount" if movement.reversal else "approved_amount"] += movement.amount
        group["net_amount"] += sign * movement.amount
        if movement.stood_in and not movement.reversal:
            group["stand_in_approvals"] += 1
            group["stand_in_amount"] += movement.amount
    else:  # a refund, or its reversal
        group["refunds"] += sign
        group["refunded_amount"] += sign * movement.amount
        group["net_amount"] -= sign * movement.amount


def shown(amount: int, exponent: int) -> str:
    """Minor units as a decimal string with the currency's exponent: exact, never a float."""
    sign, digits = ("-" if amount < 0 else ""), str(abs(amount)).rjust(exponent + 1, "0")
    return sign + (digits[:-exponent] + "." + digits[-exponent:] if exponent else digits)


def settlement_file(moved: list[Movement]) -> str:
    """One issuer's settlement file (CSV): a header, one line per movement, a trailer with the
    count of lines and their hash total (the sum of the amounts, reversals included)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("H", *FILE_COLUMNS))
    for movement in moved:
        writer.writerow(("D", movement.trace, round(movement.decided_at, 3),
                         "reversal" if movement.reversal else movement.side, movement.mti, movement.kind,
                         movement.terminal or "", movement.acquirer or "", movement.amount, movement.currency or "",
                         movement.approval or "", int(movement.stood_in)))
    writer.writerow(("T", len(moved), sum(movement.amount for movement in moved)))
    return out.getvalue()


def write_settlement_files(connection: Connection, business_date: str, directory: Path) -> list[Path]:
    """The settlement file of every issuer that has movements on `business_date`, under
    directory/<date>/<issuer>.csv, each written to a temporary name and renamed (a reader never
    sees half a file; instances sharing the directory write the same content)."""
    moved = movements(connection, business_date)
    by_issuer: dict[str, list[Movement]] = {}
    for movement in moved:
        by_issuer.setdefault(movement.issuer or "unknown", []).append(movement)
    target = directory / business_date
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for issuer, theirs in sorted(by_issuer.items()):
        path = target / f"{issuer}.csv"
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(settlement_file(theirs))
        temporary.replace(path)
        written.append(path)
    return written
