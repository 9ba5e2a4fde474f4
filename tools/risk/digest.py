"""A digest of every decision the risk engine makes on `risk bench`'s traffic, to show that a
change to the engine decides as the code before it did.

Per request: the rate limits' decline and flags, then the assessment's hits (rule, action,
code, reason), the code it is settled with, the alerts and the rules it counted in. Run it
from this tree against another checkout of the project (its engine and its bench traffic) and
against this one, and compare the lines:

    python tools/risk/digest.py --tree /tmp/before
    python tools/risk/digest.py --tree .
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from typing import Any

RULE_FILES = ("specs/bench/risk-20.toml", "specs/demo/risk.toml")
SEEDS = (1, 2, 3)


def _hit(hit: Any) -> tuple[str, str, str, str] | None:
    return (hit.rule, hit.action, hit.code, hit.reason) if hit is not None else None


def digest(rules_file: str, seed: int, requests: int) -> tuple[str, int]:
    """The digest of every request's decision, and the keys the rules hold at the end."""
    from switch.core.risk.engine import RiskEngine
    from switch.risk import load_rules
    from tools.risk.bench import traffic

    engine = RiskEngine(load_rules(rules_file))
    sha = hashlib.sha256()
    for facts, answer, now in traffic(requests, seed):
        decline, flags = engine.throttle(facts, now)
        row: list[Any] = [_hit(decline), [_hit(flag) for flag in flags]]
        if decline is None:
            found = engine.assess(facts, now)
            code = found.decline.code if found.decline else answer
            alerts = engine.settle(found, code, now)
            row += [[_hit(hit) for hit in found.hits()], code,
                    [(a.rule, a.per, a.key, a.cards, a.window, a.cooldown) for a in alerts], list(found.counted)]
        sha.update(repr(row).encode())
    return sha.hexdigest()[:16], engine.held()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", required=True, help="the project checkout whose engine decides")
    parser.add_argument("--requests", type=int, default=100_000, help="requests per seed (default: 100000)")
    arguments = parser.parse_args()
    sys.path.insert(0, arguments.tree)
    for rules_file in RULE_FILES:
        for seed in SEEDS:
            found, held = digest(f"{arguments.tree}/{rules_file}", seed, arguments.requests)
            print(f"{rules_file} seed {seed}: {found} (held {held})")


if __name__ == "__main__":
    main()
