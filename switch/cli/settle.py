"""`cardswitch settle --date YYYY-MM-DD`: a business date's net positions per issuer, acquirer
and terminal, each per currency (switch.settlement), read from the journal; `--files DIR`
(re)writes the settlement file of every issuer, as the switch does at cutover."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from switch.cli.journal import add_journal_options, open_journal, print_rows
from switch.errors import UsageError
from switch.settlement import movements, positions, shown, write_settlement_files

COLUMNS = ("by", "name", "currency", "approvals", "approved", "reversals", "reversed", "refunds", "refunded",
           "stand_in_approvals", "stand_in", "net")


def register(subparsers) -> None:
    parser = subparsers.add_parser("settle", help="net positions of a business date, and settlement files")
    add_journal_options(parser)
    parser.add_argument("--date", required=True, help="the business date, YYYY-MM-DD")
    parser.add_argument("--files", metavar="DIR", type=Path,
                        help="also write each issuer's settlement file under DIR/DATE/ISSUER.csv")
    parser.set_defaults(func=settle)


def business_date_option(text: str) -> str:
    """--date, checked: a business date YYYY-MM-DD."""
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise UsageError(f"--date: expected a business date YYYY-MM-DD, got {text!r}") from None


def settle(args) -> int:
    date = business_date_option(args.date)
    connection, _ = open_journal(args)
    moved = movements(connection, date)
    rows = positions(moved)
    if args.json:
        print_rows(rows, (), True)
    else:
        print_rows([_for_people(row) for row in rows], COLUMNS, False)
        if not rows:
            print(f"settle: no movements on business date {date}", file=sys.stderr)
    if args.files is not None:
        try:
            for path in write_settlement_files(connection, date, args.files):
                print(f"settle: wrote {path}", file=sys.stderr)
        except OSError as exc:
            raise UsageError(f"--files: cannot write under {args.files} ({exc.strerror})") from None
    return 0


def _for_people(row: dict) -> dict:
    exponent = row["exponent"]
    return {**row, "approved": shown(row["approved_amount"], exponent), "reversed": shown(row["reversed_amount"], exponent),
            "refunded": shown(row["refunded_amount"], exponent), "stand_in": shown(row["stand_in_amount"], exponent),
            "net": shown(row["net_amount"], exponent)}
