"""The one log line every transaction writes, written as its JSON text.

The same object `logs.event("txn", ...)` would write (keys, order, values; tests/test_txnline.py
reads both back), made with one f-string because it is on every transaction's path: json's
encoder takes about 41,000 instructions for these 16 keys, and each float's shortest `repr` 4,000
to 8,000 more; this about a third of it all (docs/performance.md). Times are written with three
decimals, as `round(x, 3)` gave them. Every text value goes through json's own string encoder:
stan, tid and mti come as the terminal sent them (masked for PAN-like runs), so may hold anything.
"""

from __future__ import annotations

import time

from switch.core.codes import meaning
from switch.core.txn import Txn
from switch.logs import quoted, write_line
from switch.wire.masking import mask_pan, mask_pan_like


def json_text(value: object) -> str:
    """`value` as a JSON string (null for None), as `logs.event` writes it. Anything but a string
    is written as its str(), as `event` does: a log line never fails the transaction it tells of."""
    if value is None:
        return "null"
    return quoted(value if isinstance(value, str) else str(value))


def txn_line(listener: str, mti: str, txn: Txn, pan: str | None, latency_ms: float, reason: str | None,
             risk: str | None, now: float) -> str:
    """The line's JSON text (the card masked here, as every value from the request is). For a
    request refused by the format checks (12, 30) `reason` names the field and the check, never
    its value."""
    issuer_ms = "null" if txn.issuer_ms is None else f"{txn.issuer_ms:.3f}"
    return (f'{{"ts":{now:.3f},"event":"txn","listener":{json_text(listener)},"trace":{txn.trace:d},'
            f'"mti":{json_text(mask_pan_like(mti))},"pan":{json_text(mask_pan(pan) if pan else None)},'
            f'"stan":{json_text(mask_pan_like(txn.stan))},"tid":{json_text(mask_pan_like(txn.tid))},'
            f'"issuer":{json_text(txn.issuer)},"rc":{json_text(txn.rc)},"meaning":{json_text(meaning(txn.rc))},'
            f'"state":{json_text(txn.state)},"latency_ms":{latency_ms:.3f},"issuer_ms":{issuer_ms},'
            f'"reason":{json_text(reason)},"risk":{json_text(risk)}}}')


def log_txn(listener: str, mti: str, txn: Txn, pan: str | None, latency_ms: float, reason: str | None,
            risk: str | None) -> None:
    write_line(txn_line(listener, mti, txn, pan, latency_ms, reason, risk, time.time()))
