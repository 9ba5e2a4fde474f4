"""Field 48 (additional data): TLV subelements, each a 2-digit tag, a 2-digit length and the
value, in the layout the terminal's dialect names (`[field48] layout`, docs/wire.md):

- `plain`: the subelements and nothing else (`9203123`);
- `category`: one category character first, a letter or a digit, as Mastercard's transaction
  category code (`R9203123`).

The CVV2 check reads field 48 in the layout of the listener the request came on: what does not
read there is a format error, not a request without a CVV2. A log line, an advice or a replay
tool has no dialect at hand; `read(value)` then takes the one layout the value reads in and
gives None when it reads in none or in both (a digit as category character can make one value
two different lists of subelements), so that the caller hides or drops it whole.
"""

from __future__ import annotations

import enum
from typing import Callable

import attrs


class Layout(enum.Enum):
    """A dialect's `[field48] layout`."""

    PLAIN = "plain"
    CATEGORY = "category"

    @property
    def shape(self) -> str:
        """What a field 48 in this layout looks like, for error messages."""
        tlv = "2-digit tag, 2-digit length, value"
        return tlv if self is Layout.PLAIN else f"a category letter or digit, then {tlv}"


@attrs.frozen
class Field48:
    """Field 48 as read: what `encode()` gives back is the value it was read from."""

    category: str  # "" in the plain layout
    subelements: tuple[tuple[str, str], ...]  # (tag, value), in the order they came

    @classmethod
    def parse(cls, value: str, layout: Layout) -> Field48 | None:
        """`value` read in `layout`, or None when it is not that layout's TLV."""
        category = ""
        if layout is Layout.CATEGORY:
            category, value = value[:1], value[1:]
            if not (category.isascii() and category.isalnum()):
                return None
        subelements = _subelements(value)
        return None if subelements is None else cls(category, subelements)

    def values(self, tag: str) -> list[str]:
        """Every value under `tag`, in order (a well-formed field 48 has at most one)."""
        return [data for t, data in self.subelements if t == tag]

    def without(self, tag: str) -> Field48:
        return attrs.evolve(self, subelements=tuple(s for s in self.subelements if s[0] != tag))

    def shown(self, tag: str, mask: Callable[[str], str]) -> Field48:
        """For display: each value under `tag` as '*' (its length kept), the others through `mask`."""
        return attrs.evolve(self, subelements=tuple(
            (t, "*" * len(data) if t == tag else mask(data)) for t, data in self.subelements))

    def encode(self) -> str:
        return self.category + "".join(f"{tag}{len(data):02d}{data}" for tag, data in self.subelements)


def read(value: str, layout: Layout | None = None) -> Field48 | None:
    """`value` read in `layout`; with none known, in the one layout it reads in (None when it
    reads in none, or in more than one)."""
    if layout is not None:
        return Field48.parse(value, layout)
    readings = [parsed for each in Layout if (parsed := Field48.parse(value, each)) is not None]
    return readings[0] if len(readings) == 1 else None


def without_tag(value: str, tag: str, layout: Layout | None = None) -> str:
    """`value` without its subelements under `tag` (a category character stays), as `read`
    reads it; "" when it does not read, for the caller to drop: what cannot be read cannot be
    shown to be free of `tag`."""
    parsed = read(value, layout)
    return "" if parsed is None else parsed.without(tag).encode()


def _subelements(value: str) -> tuple[tuple[str, str], ...] | None:
    out, pos = [], 0
    while pos < len(value):
        tag, length, start = value[pos:pos + 2], value[pos + 2:pos + 4], pos + 4
        if not (_digits(tag) and _digits(length)) or start + int(length) > len(value):
            return None
        out.append((tag, value[start:start + int(length)]))
        pos = start + int(length)
    return tuple(out)


def _digits(text: str) -> bool:
    """Exactly two ASCII digits (str.isdigit alone also takes '²', which int() refuses)."""
    return len(text) == 2 and text.isascii() and text.isdigit()
