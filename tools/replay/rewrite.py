"""Fresh values for the fields a target uses to recognise a repeated transmission.

A replayed request carries the STAN, transmission time, local time/date and RRN of the day it
was captured; a switch with duplicate checks would answer the replay from its journal (or with
94). `Rewriter` gives each request new values, remembers what it changed so the answer can be
mapped back to the captured values before comparison, and keeps references between messages
intact: a reversal's field 90 names the replayed original, and a request that reused an earlier
request's RRN (a reversal does) reuses that request's new RRN. Both are keyed per terminal (41).
"""

from __future__ import annotations

import datetime
import secrets

from switch.wire.message import Message

STAN_MODULUS = 999_999
# Field 90: MTI (4), STAN (6), field 7 (10), then acquirer and forwarder ids.
F90_STAN = slice(4, 10)
F90_TIME = slice(10, 20)

Changes = dict[str, tuple[str, str]]  # field -> (captured value, value sent)


class Rewriter:
    def __init__(self) -> None:
        # A random start keeps two replays of one capture apart within a duplicate window.
        self._stan = secrets.randbelow(STAN_MODULUS)
        self._originals: dict[tuple[str, str, str], tuple[str, str]] = {}  # (41, 11, 7) -> new 11, 7
        self._rrns: dict[tuple[str, str], str] = {}  # (41, 37) -> new 37

    def _next_stan(self) -> str:
        self._stan = self._stan % STAN_MODULUS + 1
        return f"{self._stan:06d}"

    def rewrite(self, request: Message, now: datetime.datetime | None = None) -> tuple[Message, Changes]:
        now = now or datetime.datetime.now(datetime.timezone.utc)
        stan = self._next_stan()
        tid = request.get("41", "")
        fresh = {
            "7": now.strftime("%m%d%H%M%S"),
            "11": stan,
            "12": now.strftime("%H%M%S"),
            "13": now.strftime("%m%d"),
            "37": self._rrns.get((tid, request.get("37", "")), now.strftime("%y")[1] + now.strftime("%j%H") + stan),
        }
        sent = request.copy()
        changes: Changes = {}
        for field, value in fresh.items():
            if field in request and request[field] != value:
                changes[field] = (request[field], value)
                sent[field] = value
        self._fix_original_data(tid, sent, changes)
        self._originals[(tid, request.get("11", ""), request.get("7", ""))] = (sent.get("11", ""), sent.get("7", ""))
        if "37" in request:
            self._rrns.setdefault((tid, request["37"]), sent["37"])
        return sent, changes

    def _fix_original_data(self, tid: str, sent: Message, changes: Changes) -> None:
        value = sent.get("90")
        if not value or len(value) < F90_TIME.stop:
            return
        replayed = self._originals.get((tid, value[F90_STAN], value[F90_TIME]))
        if replayed is None:
            return
        stan, time = replayed
        fixed = value[: F90_STAN.start] + stan + time + value[F90_TIME.stop :]
        changes["90"] = (value, fixed)
        sent["90"] = fixed


def map_back(answer: Message, changes: Changes) -> Message:
    """The answer with echoed rewritten values turned back into the captured ones."""
    mapped = answer.copy()
    for field, (captured, sent) in changes.items():
        if mapped.get(field) == sent:
            mapped[field] = captured
    return mapped
