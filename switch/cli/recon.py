"""`cardswitch recon --ledger FILE --issuer NAME --date YYYY-MM-DD`: an issuer's ledger against
the switch's journal for a business date (switch.recon); exit 1 when anything differs."""

from __future__ import annotations

import json
from pathlib import Path

from switch.cli.journal import add_journal_options, open_journal
from switch.cli.settle import business_date_option
from switch.recon import ReconResult, read_ledger, reconcile


def register(subparsers) -> None:
    parser = subparsers.add_parser("recon", help="reconcile an issuer's ledger with the journal for a business date")
    add_journal_options(parser)
    parser.add_argument("--ledger", required=True, type=Path, help="the issuer's ledger (JSON lines)")
    parser.add_argument("--issuer", required=True, help="the issuer's name in the switch config")
    parser.add_argument("--date", required=True, help="the business date, YYYY-MM-DD")
    parser.set_defaults(func=recon)


def recon(args) -> int:
    date = business_date_option(args.date)
    ledger = read_ledger(args.ledger)
    connection, _ = open_journal(args)
    result = reconcile(connection, args.issuer, date, ledger)
    print(json.dumps(result.as_dict()) if args.json else report(args.issuer, date, result))
    return 0 if result.clean else 1


def report(issuer: str, date: str, result: ReconResult) -> str:
    lines = [f"recon {issuer} {date}: {result.matched} matched, {len(result.missing_at_issuer)} missing at the issuer,"
             f" {len(result.missing_at_switch)} missing at the switch, {len(result.amount_differences)} amount"
             f" differences{'' if result.clean else ': NOT CLEAN'}"]
    lines += [f"  missing at the issuer: {item['key']} (trace {item['trace']}, {item['amount']})"
              for item in result.missing_at_issuer]
    lines += [f"  missing at the switch: {item['key']} ({item['card']}, {item['amount']})"
              for item in result.missing_at_switch]
    lines += [f"  amount differs: {item['key']} (trace {item['trace']}): switch {item['switch']}, issuer {item['issuer']}"
              for item in result.amount_differences]
    return "\n".join(lines)
