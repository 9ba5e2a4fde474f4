"""`risk bench`: what the risk stage costs per transaction, in CPU, for a given rules file.

Synthetic traffic, seeded: a fixed set of cards on the demo network's BINs (each with its
issuer and home country), terminals that each belong to one merchant, acquirer, country and
MCC, amounts spread like card spending, mostly approved. A card is used in its home country,
now and then abroad. Requests arrive on a simulated clock at `RATE` a second, so that a card
is seen about twice an hour, as in a real network's much larger card base.
Everything is built before the clock starts, and frozen out of the cyclic collector's sight
(the switch holds no such pile of requests, and scanning it would be charged to the rules).
What is timed is only what the switch does per request: `throttle()`, `assess()` and
`settle()` with the answer. The windows fill as they would
in production, so `held` at the end is the memory those rules keep at that rate.
"""

from __future__ import annotations

import gc
import hashlib
import random
import time
from collections import Counter
from typing import Any

import attrs

from switch.core.codes import RC
from switch.core.risk.engine import RiskEngine
from switch.core.risk.facts import Facts
from switch.core.risk.rules import NOT_PRESENT, PRESENT, RuleSet

RATE = 2.0  # requests a second on the simulated clock
ABROAD = 0.02  # share of requests at a terminal outside the card's home country
CARDS = 4000
TERMINALS = 800
MERCHANTS = 300
CONNECTIONS = 40
# The demo network's routes: BIN -> issuer (specs/demo/switch.toml).
BINS = {"476173": "bank_a", "520000": "bank_b", "524242": "bank_b", "601100": "bank_c"}
COUNTRIES = {"840": 70, "124": 8, "826": 8, "250": 5, "276": 5, "566": 2, "643": 1, "408": 1}
MCCS = {"5411": 30, "5812": 20, "5999": 20, "4111": 10, "6011": 10, "5967": 5, "7995": 5}
ANSWERS: dict[str, int] = {RC.APPROVED: 940, RC.INSUFFICIENT_FUNDS: 40, RC.DO_NOT_HONOUR: 10, RC.CVV2_FAILED: 7, RC.EXPIRED_CARD: 3}


@attrs.frozen
class Report:
    rules: int
    requests: int
    seed: int
    cpu_us: float  # per transaction, time.process_time
    wall_us: float  # per transaction, time.perf_counter
    held: int  # keys held across the rules' memory at the end
    declined: dict[str, int]  # rule -> requests it declined

    def lines(self) -> list[str]:
        total = sum(self.declined.values())
        by_rule = ", ".join(f"{rule} {count}" for rule, count in sorted(self.declined.items(), key=lambda i: -i[1]))
        return [
            f"risk bench: {self.rules} rules, {self.requests} requests ({CARDS} cards, {TERMINALS} terminals, "
            f"{RATE:g}/s simulated), seed {self.seed}",
            f"cpu   {self.cpu_us:.2f} µs per transaction (process_time; throttle + assess + settle)",
            f"wall  {self.wall_us:.2f} µs per transaction (perf_counter)",
            f"held  {self.held} keys at the end",
            f"declined {total} ({100 * total / max(self.requests, 1):.1f}%)" + (f": {by_rule}" if by_rule else ""),
        ]

    def as_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def traffic(requests: int, seed: int) -> list[tuple[Facts, str, float]]:
    """(facts, issuer answer, time) per request."""
    rng = random.Random(seed)
    cards = []
    for _ in range(CARDS):
        prefix = rng.choice(list(BINS))
        pan = prefix + "".join(rng.choice("0123456789") for _ in range(16 - len(prefix)))
        cards.append((pan, hashlib.sha256(pan.encode()).hexdigest(), BINS[prefix], _weighted(rng, COUNTRIES)))
    merchants = [(f"M{index:014d}", _weighted(rng, MCCS)) for index in range(MERCHANTS)]
    terminals = []
    for index in range(TERMINALS):
        merchant, mcc = rng.choice(merchants)
        terminals.append((f"T{index:07d}", merchant, mcc, rng.choice(("100001", "100002")),
                          _weighted(rng, COUNTRIES), f"c{index % CONNECTIONS}"))
    at_home = {country: [t for t in terminals if t[4] == country] or terminals for country in COUNTRIES}
    made = []
    for index in range(requests):
        pan, pan_hash, issuer, home = rng.choice(cards)
        terminal, merchant, mcc, acquirer, country, connection = rng.choice(
            terminals if rng.random() < ABROAD else at_home[home])
        channel = PRESENT if rng.random() < 0.7 else NOT_PRESENT
        facts = Facts(pan=pan, pan_hash=pan_hash, issuer=issuer, terminal=terminal, acquirer=acquirer,
                      merchant=merchant, mcc=mcc, country=country, channel=channel,
                      amount=min(int(rng.lognormvariate(7.5, 1.3)), 10**12 - 1),
                      has_pin=channel == PRESENT and rng.random() < 0.6, connection=connection)
        made.append((facts, _weighted(rng, ANSWERS), index / RATE))
    return made


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def run(rules: RuleSet, requests: int, seed: int) -> Report:
    load = traffic(requests, seed)
    engine = RiskEngine(rules)
    decided: list[str | None] = [None] * requests
    gc.freeze()
    cpu, wall = time.process_time(), time.perf_counter()
    for index, (facts, answer, now) in enumerate(load):
        decline, _ = engine.throttle(facts, now)
        if decline is None:
            found = engine.assess(facts, now)
            decline = found.decline
            engine.settle(found, decline.code if decline else answer, now)
        if decline is not None:
            decided[index] = decline.rule
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    gc.unfreeze()
    declined = Counter(rule for rule in decided if rule is not None)
    return Report(rules=len(rules), requests=requests, seed=seed, cpu_us=cpu / requests * 1e6,
                  wall_us=wall / requests * 1e6, held=engine.held(), declined=dict(declined))
