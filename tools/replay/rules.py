"""Expectations beyond "same as captured", from a small TOML file given with `--rules`.

    # field 39 must be 00 for these cards, whatever the capture says
    [[rule]]
    field = "39"
    equals = "00"                       # or a list: equals = ["00", "10"]
    pans = ["4761730000000011"]         # optional: requests whose PAN is one of these
    mti = "0200"                        # optional: requests of this MTI

A rule selects requests (all of them when it names neither pans nor mti) and checks one field
of the target's answer. Rules files name test PANs; failures still show them masked.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from switch.core.messages import card_pan
from switch.tomlfile import Table, read_toml
from switch.wire.masking import masked_value
from switch.wire.message import Message
from tools.replay.compare import FieldDiff


@attrs.frozen
class Rule:
    number: int
    field: str
    equals: tuple[str, ...]
    pans: frozenset[str] = frozenset()
    mti: str | None = None

    def applies(self, request: Message) -> bool:
        if self.mti is not None and request.mti != self.mti:
            return False
        return not self.pans or card_pan(request) in self.pans

    def check(self, answer: Message) -> FieldDiff | None:
        got = answer.get(self.field)
        if got in self.equals:
            return None
        wanted = " or ".join(masked_value(self.field, value) for value in self.equals)
        shown = None if got is None else masked_value(self.field, got)
        return FieldDiff(self.field, wanted, shown, f"rule {self.number}")


def _is_field(value: object) -> bool:
    return isinstance(value, str) and value.isdigit() and 1 <= int(value) <= 128


def load_rules(path: str | Path) -> tuple[Rule, ...]:
    top = Table(path, "", read_toml(path))
    rules = []
    for number, table in enumerate(top.tables("rule"), 1):
        field = table.get("field", str, expected='a field number as a string, e.g. "39"', check=_is_field)
        equals = table.get("equals", (str, list), expected="a string or an array of strings",
                           check=lambda v: isinstance(v, str) or (bool(v) and all(isinstance(x, str) for x in v)))
        pans = table.get("pans", list, [], "an array of PANs (digit strings)",
                         check=lambda v: all(isinstance(x, str) and x.isdigit() for x in v))
        mti = table.get("mti", str, None, "a 4-digit MTI", check=lambda v: len(v) == 4 and v.isdigit())
        table.finish()
        rules.append(Rule(number, str(int(field)), (equals,) if isinstance(equals, str) else tuple(equals),
                          frozenset(pans), mti))
    top.finish()
    return tuple(rules)
