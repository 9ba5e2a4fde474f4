"""What makes a replayed answer the same as the captured one: field by field, minus an ignore set.

The default ignore set holds what legitimately differs between runs: transmission time, STAN,
local time and date, RRN and approval code. Diffs carry masked values only (switch.wire.masking),
since they end up on a terminal, in CI logs and in JUnit files.
"""

from __future__ import annotations

import attrs

from switch.errors import UsageError
from switch.core.fields import ICC_FIELDS
from switch.wire.emv import icc_differences
from switch.wire.masking import masked_value
from switch.wire.message import Message

DEFAULT_IGNORE = frozenset({"7", "11", "12", "13", "37", "38"})


@attrs.frozen
class FieldDiff:
    field: str  # a field number, or "mti"
    expected: str | None  # masked; None when absent
    actual: str | None  # masked; None when absent
    why: str = ""  # empty for a plain difference, else e.g. the rule that failed

    def describe(self, name: str = "") -> str:
        label = f"field {self.field}" + (f" ({name})" if name else "") if self.field != "mti" else "MTI"
        expected = "absent" if self.expected is None else self.expected
        actual = "absent" if self.actual is None else self.actual
        return f"{label}: expected {expected}, got {actual}" + (f" [{self.why}]" if self.why else "")


def _shown(field: str, value: str | None) -> str | None:
    return None if value is None else masked_value(field, value)


def compare(expected: Message, actual: Message, ignore: frozenset[str] = DEFAULT_IGNORE) -> list[FieldDiff]:
    diffs = []
    if expected.mti != actual.mti:
        diffs.append(FieldDiff("mti", expected.mti, actual.mti))
    for field in sorted(set(expected.fields) | set(actual.fields), key=int):
        if field in ignore:
            continue
        want, got = expected.get(field), actual.get(field)
        if want == got:
            continue
        by_tag = icc_differences(want, got) if field in ICC_FIELDS and want and got else None
        if by_tag is not None:  # chip data: which tags differ
            diffs += [FieldDiff(f"{field}.{tag}", ours, theirs) for tag, ours, theirs in by_tag]
        else:
            diffs.append(FieldDiff(field, _shown(field, want), _shown(field, got)))
    return diffs


def parse_ignore(text: str) -> frozenset[str]:
    """`--ignore 7,11,37` -> field numbers; an empty string ignores nothing."""
    fields = {part.strip() for part in text.split(",") if part.strip()}
    bad = sorted(f for f in fields if not (f.isdigit() and 1 <= int(f) <= 128))
    if bad:
        raise UsageError(f"--ignore: expected field numbers from 1 to 128, got {', '.join(bad)}")
    return frozenset(str(int(f)) for f in fields)
