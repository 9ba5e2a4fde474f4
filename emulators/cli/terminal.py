"""`cardswitch terminal ACTION`: one transaction sent as a terminal, from the command line.

Exits 0 when approved (field 39 00), 1 on any other answer, 3 without one (cannot connect,
connection lost, timeout), 2 on bad usage.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import string

import trio

from emulators.network import DEMO_KEYS, DEMO_LMK, DEMO_TPK, terminal_pin_key
from emulators.terminal import PinKey, open_terminal
from switch.addresses import address_option
from switch.capture import sink
from switch.core import codes
from switch.core.messages import ADVICE_MTI
from switch.core.reconciliation import Totals, settlement_date_valid
from switch.errors import UsageError
from switch.hsm.lmk import LMK_ENV
from switch.tlsoptions import add_client_options, client_endpoint
from switch.wire.dialect import load_dialect
from switch.wire.message import Message

AMOUNT = re.compile(r"\d{1,10}(\.\d{1,2})?")


def register(subparsers) -> None:
    terminal = subparsers.add_parser("terminal", help="send one transaction as a terminal")
    terminal.add_argument("action", choices=("purchase", "auth", "reverse", "echo", "balance", "refund", "reconcile"),
                          help="the transaction to send (reconcile: an 0500 with the batch totals)")
    terminal.add_argument("--target", metavar="HOST:PORT", help="the switch's terminal listener (default 127.0.0.1:8583)")
    terminal.add_argument("--host", help="alias: the host of --target (default 127.0.0.1)")
    terminal.add_argument("--port", type=int, help="alias: the port of --target (default 8583)")
    terminal.add_argument("--dialect", default="iso87-binary", help="the listener's dialect")
    terminal.add_argument("--pan", help="card number, 12 to 19 digits")
    terminal.add_argument("--amount", default="0", help="major units, e.g. 25.00")
    terminal.add_argument("--currency", default="978", help="ISO 4217 numeric")
    terminal.add_argument("--expiry", help="YYMM")
    terminal.add_argument("--track2", help="track 2 image instead of --pan/--expiry")
    terminal.add_argument("--tid", default="T0000001", help="terminal id (field 41)")
    terminal.add_argument("--mid", default="M00000000000001", help="merchant id (field 42)")
    terminal.add_argument("--pin", help="PIN entered on the terminal; sent encrypted under its TPK (field 52)")
    terminal.add_argument("--cvv2", help="CVV2 for a card-not-present transaction (field 48 tag 92)")
    terminal.add_argument("--keys", default=str(DEMO_KEYS),
                          help="--pin: key store holding the TPK (default: the demo's)")
    terminal.add_argument("--tpk", default=DEMO_TPK, help=f"--pin: the terminal's TPK in --keys (default {DEMO_TPK})")
    terminal.add_argument("--lmk-file", help="--pin: the LMK of --keys (default: $CARDSWITCH_LMK, "
                          "else the demo's insecure LMK)")
    terminal.add_argument("--tak", metavar="HEX",
                          help="the terminal's clear MAC key (32 hex digits, test keys only: `cardswitch demo "
                          "--terminals`): MAC the request (field 64) and check the answer's MAC (exit 3 when it fails)")
    terminal.add_argument("--original-stan", help="reverse: STAN of the original")
    terminal.add_argument("--original-time", help="reverse: field 7 of the original, MMDDhhmmss")
    terminal.add_argument("--original-mti", default="0200", help="reverse: MTI of the original")
    terminal.add_argument("--advice", action="store_true",
                          help="purchase, auth, reverse: send it as an advice of what already happened "
                          "(0220, 0120, 0420)")
    terminal.add_argument("--date", metavar="MMDD", help="reconcile: the business date (default: today, UTC)")
    for side in BATCH_SIDES:
        terminal.add_argument(f"--{side.replace('_', '-')}", metavar="COUNT:AMOUNT", default="0:0",
                              help=f"reconcile: the batch's {side.replace('_', ' ')}, e.g. 4:100.00 (default 0:0)")
    terminal.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer (exit 3 without one)")
    terminal.add_argument("--stan", type=int, help="field 11 to use (default: random, so runs are not duplicates)")
    terminal.add_argument("--json", action="store_true", help="print the response as JSON")
    add_client_options(terminal)
    sink.add_arguments(terminal)
    terminal.set_defaults(func=run_terminal)


def minor_units(text: str, option: str = "--amount") -> int:
    if not AMOUNT.fullmatch(text):
        raise UsageError(f"{option}: expected an amount like 25 or 25.00, got {text!r}")
    whole, _, fraction = text.partition(".")
    return int(whole) * 100 + int(fraction.ljust(2, "0") or 0)


BATCH_SIDES = ("debits", "debit_reversals", "credits", "credit_reversals")
PROCESSING = {"purchase": "000000", "auth": "000000", "refund": "200000", "balance": "310000"}


def batch_totals(args) -> Totals:
    """reconcile: the totals given as COUNT:AMOUNT per side, checked before any connection."""
    values = {}
    for side in BATCH_SIDES:
        option = f"--{side.replace('_', '-')}"
        count, colon, amount = getattr(args, side).partition(":")
        if not (colon and count.isdigit() and len(count) <= 10):
            raise UsageError(f"{option}: expected COUNT:AMOUNT like 4:100.00, got {getattr(args, side)!r}")
        values[side] = int(count)
        values[f"{side}_amount"] = minor_units(amount, option)
    return Totals(**values)


def business_date_option(args) -> str:
    if args.date is None:
        return datetime.datetime.now(datetime.timezone.utc).strftime("%m%d")
    if not settlement_date_valid(args.date):
        raise UsageError(f"--date: expected a business date MMDD, got {args.date!r}")
    return args.date


def card_details(args) -> dict | None:
    """The card and amount for the request, checked before any connection is made."""
    if args.advice and args.action not in ("purchase", "auth", "reverse", "reconcile"):
        raise UsageError(f"--advice: {args.action} has no advice; purchase, auth, reverse and reconcile do")
    if args.action in ("echo", "reconcile"):
        return None
    if not (args.pan or args.track2):
        raise UsageError(f"{args.action}: --pan or --track2 is required")
    if args.pan and not (args.pan.isdigit() and 12 <= len(args.pan) <= 19):
        raise UsageError("--pan: expected 12 to 19 digits")
    if args.expiry and not (args.expiry.isdigit() and len(args.expiry) == 4):
        raise UsageError("--expiry: expected YYMM")
    if args.action == "reverse" and not (args.original_stan and args.original_time):
        raise UsageError("reverse: --original-stan and --original-time are required")
    if args.action != "reverse" and not args.track2 and not args.expiry:
        raise UsageError(f"{args.action}: --expiry is required with --pan")
    if args.pin is not None and not (args.pin.isdigit() and 4 <= len(args.pin) <= 12):
        raise UsageError("--pin: expected 4 to 12 digits")
    if args.cvv2 is not None and not (args.cvv2.isdigit() and len(args.cvv2) == 3):
        raise UsageError("--cvv2: expected 3 digits")
    return dict(pan=args.pan, amount=minor_units(args.amount), currency=args.currency,
                expiry=args.expiry, track2=args.track2, pin=args.pin, cvv2=args.cvv2)


def pin_key(args) -> PinKey | None:
    """The terminal's TPK, only when a PIN is to be sent."""
    if args.pin is None:
        return None
    lmk_file = args.lmk_file or (None if os.environ.get(LMK_ENV) else DEMO_LMK)
    try:
        return terminal_pin_key(args.keys, args.tpk, lmk_file)
    except (ValueError, OSError) as exc:
        raise UsageError(f"--lmk-file: {exc}") from None


def build_request(terminal, args, card: dict | None) -> Message:
    if args.action == "reconcile":
        return terminal.reconciliation(business_date_option(args), batch_totals(args).fields(),
                                       "0520" if args.advice else "0500")
    if card is None:
        return terminal.network("301")
    if args.action == "reverse":
        original = terminal.card_request(args.original_mti, **card)
        original["11"], original["7"] = args.original_stan.zfill(6), args.original_time
        return terminal.reversal_of(original, request_mti("0400", args))
    mti = request_mti("0100" if args.action == "auth" else "0200", args)
    return terminal.card_request(mti, processing_code=PROCESSING[args.action], **card)


def request_mti(mti: str, args) -> str:
    """`mti`, or with --advice its advice MTI."""
    return ADVICE_MTI[mti] if args.advice else mti


def run_terminal(args) -> int:
    dialect = load_dialect(args.dialect)
    if args.stan is not None and not 1 <= args.stan <= 999_999:
        raise UsageError("--stan: expected a number from 1 to 999999")
    if args.tak is not None and not (len(args.tak) == 32 and all(c in string.hexdigits for c in args.tak)):
        raise UsageError("--tak: expected 32 hex digits (a double-length TDES key)")
    host, port = address_option(args.target, "--target", args.host, args.port,
                                default_host="127.0.0.1", default_port=8583)
    card = card_details(args)
    if args.action == "reconcile":  # checked before any connection is made
        batch_totals(args)
        business_date_option(args)
    key = pin_key(args)
    tls = client_endpoint(args)

    async def transact() -> Message:
        async with open_terminal(host, port, dialect=dialect, tid=args.tid, mid=args.mid,
                                 timeout=args.timeout, capture=capture, pin_key=key, mac_key=args.tak,
                                 first_stan=args.stan or secrets.randbelow(999_999) + 1, tls=tls) as terminal:
            return await terminal.send(build_request(terminal, args, card))

    capture = sink.from_args(args)
    try:
        response = trio.run(transact)
    finally:
        if capture is not None:
            capture.close()
    print(json.dumps(response.masked()) if args.json else show(response, dialect))
    return 0 if response.get("39") == "00" else 1


def show(response: Message, dialect) -> str:
    """The response as `cardswitch terminal` prints it: one field a line, 39 with its meaning,
    and for a 30 the switch's reason (field 44: which field failed which check) beside it."""
    shown = response.masked()
    lines = [f"MTI  {response.mti}"]
    for field, value in shown.items():
        if field != "mti":
            meaning = f"  ({codes.meaning(value)})" if field == "39" else ""
            if field == "39" and value == codes.RC.FORMAT_ERROR and shown.get("44"):
                meaning = f"  ({codes.meaning(value)}: {shown['44']})"
            lines.append(f"{field:>4} {dialect.describe(field):<40} {value}{meaning}")
    return "\n".join(lines)
