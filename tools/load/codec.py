"""The codec-only cost of a transaction, to hold the switch's CPU per transaction against.

For a sample of the benchmark's own mix, each request and response is prepared as it travels:
the terminal's request in the listener dialect, the forwarded copy (field 32 added), the issuer
emulator's real answer in the issuer's dialect, and the terminal's response. Timing then does,
per transaction, exactly the switch's unavoidable wire work: decode the request, encode it for
the issuer, decode the issuer's answer, encode the response — 2 decodes + 2 encodes, no I/O.
"""

from __future__ import annotations

import time
from pathlib import Path

from emulators.issuer import load_issuer_file
from emulators.terminal import DEFAULT_MID, Terminal
from switch.config import load_config
from switch.core.messages import respond
from switch.wire.dialect import Dialect
from switch.wire.message import Message
from tools.load.mix import Mix

Sample = tuple[Dialect, bytes, Message, Dialect, bytes, Message]


def samples(mix: Mix, switch_config: Path, issuer_files: dict[str, Path], count: int = 200,
            pin_key=None) -> list[Sample]:
    config = load_config(switch_config)
    listener = next(l for l in config.listeners if l.dialect.name == "iso87-binary")
    dialects = {issuer.name: issuer.dialect for issuer in config.issuers}
    banks = {name: load_issuer_file(path)[1] for name, path in issuer_files.items()}
    pin = {"pin_key": pin_key} if pin_key is not None else {}
    terminal = Terminal(None, listener.dialect, "C0000001", DEFAULT_MID, 1.0, listener.dialect.framing.header.default, **pin)
    prepared = []
    for _ in range(count):
        operation = mix.next()
        card = operation.card
        entered_pin = card.pin if operation.kind == "pin" and pin_key is not None else None
        request = terminal.card_request("0200", pan=card.pan, expiry=card.expiry, amount=operation.amount,
                                        pin=entered_pin)
        if operation.kind == "reversal":
            request = terminal.reversal_of(request)
        route = config.routing.lookup(card.pan)
        if route is None:
            raise RuntimeError(f"{switch_config}: no route for a card of issuer {card.issuer}")
        issuer = route.issuer
        forwarded = request.copy()
        forwarded["32"] = listener.acquirer_id or "0"
        answer = banks[issuer].decide(forwarded)
        issuer_dialect = dialects[issuer]
        prepared.append((listener.dialect, listener.dialect.encode(request), forwarded,
                         issuer_dialect, issuer_dialect.encode(answer),
                         respond(request, answer.get("39", "96"), answer)))
    return prepared


def us_per_txn(prepared: list[Sample], min_seconds: float = 0.5) -> float:
    """Microseconds for 2 decodes + 2 encodes per transaction, over at least `min_seconds`."""
    done = 0
    started = time.perf_counter()
    while True:
        for terminal_dialect, request, forwarded, issuer_dialect, answer, response in prepared:
            terminal_dialect.decode(request)
            issuer_dialect.encode(forwarded)
            issuer_dialect.decode(answer)
            terminal_dialect.encode(response)
        done += len(prepared)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return elapsed / done * 1_000_000
