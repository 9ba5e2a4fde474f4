"""`cardswitch journal list | totals | saf | check`: read a switch's journal (read-only).

Output is a table for people or JSON lines for jq. Nothing here can show more than the journal
holds, and the journal holds no full PAN.
"""

from __future__ import annotations

import datetime
import json
import re
import sqlite3
import sys
from pathlib import Path

from switch import audit, progress
from switch.core.states import State
from switch.errors import UsageError
from switch.journal import DB_FILE, Connection, connect
from switch.stores import display_url, is_postgres_url

DEFAULT_LIMIT = 1000
ALL_ROWS = 2 ** 62  # a LIMIT both SQLite and PostgreSQL read as "all"
RELATIVE = re.compile(r"(\d+)([smhd])")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
LIST_COLUMNS = ("trace", "time", "mti", "tid", "stan", "rrn", "pan", "amount", "currency", "issuer", "rc",
                "approval", "state", "latency_ms", "reason", "risk")
SAF_COLUMNS = ("id", "issuer", "trace", "kind", "mti", "status", "attempts", "next_attempt", "last_error",
               "response_code")


def register(subparsers) -> None:
    parser = subparsers.add_parser("journal", help="read the transaction journal")
    commands = parser.add_subparsers(dest="journal_command", metavar="JOURNAL_COMMAND", required=True)
    common = add_journal_options

    listing = commands.add_parser("list", help="transactions, newest last")
    common(listing)
    listing.add_argument("--tid", help="terminal id (field 41)")
    listing.add_argument("--rrn", help="retrieval reference number (field 37)")
    listing.add_argument("--pan-last4", help="last four digits of the card")
    listing.add_argument("--state", help=f"one of {', '.join(State)}")
    listing.add_argument("--risk", metavar="RULE", nargs="?", const="",
                         help="only what risk rules declined or flagged (by RULE, when given)")
    listing.add_argument("--since", help="ISO time (2026-11-22T10:00) or an age (15m, 2h, 1d)")
    listing.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                         help=f"show the newest N matching transactions (default {DEFAULT_LIMIT}; 0: all)")
    listing.set_defaults(func=list_transactions)

    totals = commands.add_parser("totals", help="counts and amounts per issuer and per terminal")
    common(totals)
    totals.add_argument("--since", help="ISO time or an age (15m, 2h, 1d)")
    totals.set_defaults(func=show_totals)

    saf = commands.add_parser("saf", help="store-and-forward items: queued, retrying, parked (--all: acknowledged and withdrawn too)")
    common(saf)
    saf.add_argument("--all", action="store_true", help="acknowledged items too")
    saf.set_defaults(func=show_saf)

    check = commands.add_parser("check", help="check the journal's invariants (exit 1 when broken)")
    common(check)
    check.set_defaults(func=run_check)


def add_journal_options(sub) -> None:
    """Which journal a reading command reads, and --json."""
    where = sub.add_mutually_exclusive_group()
    where.add_argument("--data-dir", default="cardswitch-data", help="the switch's data directory")
    where.add_argument("--db", help="the journal database file itself")
    where.add_argument("--journal", metavar="URL", help="a shared journal: its postgresql:// URL")
    sub.add_argument("--json", action="store_true", help="JSON lines instead of a table")


def open_journal(args) -> tuple[Connection, Path | None]:
    """A read-only connection to the journal the arguments name, and the data directory whose
    files `check` looks through for PANs (None for a database named by itself)."""
    if args.journal:
        return _open_shared(args.journal), None
    path = Path(args.db) if args.db else Path(args.data_dir) / DB_FILE
    if not path.is_file():
        raise UsageError(f"{path}: no journal there (expected the switch's {DB_FILE}; see --data-dir / --db)")
    try:
        connection = connect(path, readonly=True)
        connection.execute("SELECT 1 FROM transactions LIMIT 1")
    except sqlite3.Error as exc:
        raise UsageError(f"{path}: not a cardswitch journal ({exc})") from None
    return connection, (None if args.db else Path(args.data_dir))


def _open_shared(url: str) -> Connection:
    if not is_postgres_url(url):
        raise UsageError(f"--journal: expected a postgresql:// URL, got {display_url(url)!r}")
    import psycopg

    from switch.pgjournal import PgConnection
    try:
        connection = PgConnection(url)
        connection.execute("SET default_transaction_read_only = on")
        connection.execute("SELECT 1 FROM transactions LIMIT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{display_url(url)}: not a reachable cardswitch journal ({reason})") from None
    return connection


def since_timestamp(text: str | None) -> float:
    if not text:
        return 0.0
    relative = RELATIVE.fullmatch(text)
    if relative:
        return datetime.datetime.now().timestamp() - int(relative[1]) * UNITS[relative[2]]
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--since: expected an ISO time like 2026-11-22T10:00 or an age like 15m, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def print_rows(rows: list[dict], columns: tuple[str, ...], as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    widths = {c: max([len(c)] + [len(_cell(row.get(c))) for row in rows]) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(_cell(row.get(c)).ljust(widths[c]) for c in columns))


def _cell(value) -> str:
    return "" if value is None else str(value)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(timespec="milliseconds")


def list_transactions(args) -> int:
    if args.limit < 0:
        raise UsageError(f"--limit: expected a number of transactions, 0 for all, got {args.limit}")
    if args.state is not None and args.state not in {state.value for state in State}:
        raise UsageError(f"--state: expected one of {', '.join(State)}, got {args.state!r}")
    connection, _ = open_journal(args)
    where = ["created_at >= ?"]
    params: list[float | str] = [since_timestamp(args.since)]
    for column, value in (("tid", args.tid), ("rrn", args.rrn), ("state", args.state)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if args.risk is not None:
        where.append("risk LIKE ? ESCAPE '\\'")
        rule = args.risk.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(f"%by {rule}:%" if rule else "%")
    if args.pan_last4:
        if not (args.pan_last4.isdigit() and len(args.pan_last4) == 4):
            raise UsageError("--pan-last4: expected 4 digits")
        where.append("pan_masked LIKE ?")
        params.append(f"%{args.pan_last4}")
    rows = connection.execute(
        f"SELECT * FROM (SELECT * FROM transactions WHERE {' AND '.join(where)} ORDER BY created_at DESC, trace DESC"
        " LIMIT ?) AS newest ORDER BY created_at, trace", (*params, args.limit + 1 if args.limit else ALL_ROWS)).fetchall()
    if args.limit and len(rows) > args.limit:  # one more than shown: the limit cut the list
        rows = rows[1:]
        print(f"journal list: showing the newest {args.limit} matching transactions, there are more "
              "(--limit N to show more, --limit 0 for all)", file=sys.stderr)
    shown = [{
        "trace": row["trace"], "time": _iso(row["created_at"]), "mti": row["mti"], "tid": row["tid"],
        "stan": row["stan"], "rrn": row["rrn"], "pan": row["pan_masked"], "amount": row["amount"],
        "currency": row["currency"], "issuer": row["issuer"], "rc": row["rc"], "approval": row["approval"],
        "state": row["state"], "latency_ms": row["latency_ms"], "reason": row["reason"],
        "late_rc": row["late_rc"], "reversed_amount": row["reversed_amount"],
        "original_trace": row["original_trace"], "country": row["country"], "risk": row["risk"],
    } for row in rows]
    print_rows(shown, LIST_COLUMNS, args.json)
    return 0


TOTALS_SQL = """
SELECT {group} AS name,
  CAST(SUM(CASE WHEN mti IN ('0100', '0200') AND state IN ('approved', 'stood_in', 'reversed', 'partially_reversed')
      THEN 1 ELSE 0 END) AS BIGINT) AS approvals,
  CAST(SUM(CASE WHEN mti IN ('0100', '0200') AND state IN ('approved', 'stood_in', 'reversed', 'partially_reversed')
      THEN amount ELSE 0 END) AS BIGINT) AS approved_amount,
  CAST(SUM(CASE WHEN mti IN ('0100', '0200') AND state IN ('declined', 'rejected', 'timed_out', 'failed')
      THEN 1 ELSE 0 END) AS BIGINT) AS declines,
  CAST(SUM(CASE WHEN mti IN ('0100', '0200') AND state IN ('reversed', 'partially_reversed') THEN 1 ELSE 0 END) AS BIGINT) AS reversals,
  CAST(SUM(CASE WHEN mti IN ('0100', '0200') THEN reversed_amount ELSE 0 END) AS BIGINT) AS reversed_amount,
  CAST(SUM(CASE WHEN mti = '0200' AND state IN ('approved', 'stood_in', 'partially_reversed')
      AND processing_code LIKE '00%' THEN amount - reversed_amount ELSE 0 END) AS BIGINT) AS net_purchases
FROM transactions WHERE created_at >= ? AND {group} IS NOT NULL GROUP BY {group} ORDER BY {group}
"""
TOTALS_COLUMNS = ("by", "name", "approvals", "approved_amount", "declines", "reversals", "reversed_amount",
                  "net_purchases")


def show_totals(args) -> int:
    connection, _ = open_journal(args)
    since = since_timestamp(args.since)
    rows = []
    for by, group in (("issuer", "issuer"), ("terminal", "tid")):
        for row in connection.execute(TOTALS_SQL.format(group=group), (since,)):
            rows.append({"by": by, **{k: row[k] for k in row.keys()}})
    print_rows(rows, TOTALS_COLUMNS, args.json)
    return 0


def show_saf(args) -> int:
    connection, _ = open_journal(args)
    condition = "" if args.all else "WHERE status IN ('queued', 'retrying', 'parked')"
    rows = [{c: (_iso(row[c]) if c == "next_attempt" else row[c]) for c in SAF_COLUMNS}
            for row in connection.execute(f"SELECT * FROM saf {condition} ORDER BY id")]
    print_rows(rows, SAF_COLUMNS, args.json)
    return 0


def run_check(args) -> int:
    connection, data_dir = open_journal(args)
    with progress.bar(audit.CHECK_STEPS, "journal check") as bar:
        problems = audit.check(connection, data_dir, step=bar.update)
    for problem in problems:
        print(problem)
    if not problems:
        print("journal ok: every transaction final, every late approval reversed, no PAN in the data directory")
    return 1 if problems else 0
