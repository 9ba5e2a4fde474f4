"""Fresh values for the fields a target uses to recognise a repeated transmission.

A replayed request carries the STAN, transmission time, local time/date and RRN of the day it
was captured; a switch with duplicate checks would answer the replay from its journal (or with
94). `Rewriter` gives each request new values, remembers what it changed so the answer can be
mapped back to the captured values before comparison, and fixes field 90 of reversals so it
names the replayed original rather than the captured one.
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
        self._originals: dict[tuple[str, str], tuple[str, str]] = {}

    def _next_stan(self) -> str:
        self._stan = self._stan % STAN_MODULUS + 1
        return f"{self._stan:06d}"

    def rewrite(self, request: Message, now: datetime.datetime | None = None) -> tuple[Message, Changes]:
        now = now or datetime.datetime.now(datetime.timezone.utc)
        stan = self._next_stan()
        fresh = {
            "7": now.strftime("%m%d%H%M%S"),
            "11": stan,
            "12": now.strftime("%H%M%S"),
            "13": now.strftime("%m%d"),
            "37": now.strftime("%y")[1] + now.strftime("%j%H") + stan,
        }
        sent = request.copy()
        changes: Changes = {}
        for field, value in fresh.items():
            if field in request and request[field] != value:
                changes[field] = (request[field], value)
                sent[field] = value
        self._fix_original_data(sent, changes)
        self._originals[(request.get("11", ""), request.get("7", ""))] = (sent.get("11", ""), sent.get("7", ""))
        return sent, changes

    def _fix_original_data(self, sent: Message, changes: Changes) -> None:
        value = sent.get("90")
        if not value or len(value) < F90_TIME.stop:
            return
        replayed = self._originals.get((value[F90_STAN], value[F90_TIME]))
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
