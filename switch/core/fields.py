"""Field sensitivity: one table that says, for every field that carries card data, secrets or
keys, how it may be shown, whether it goes back to a terminal, into an advice that waits in
store-and-forward, or into a journal row.

Masking (switch.wire.masking), responses and advices (switch.core.messages), the journal
(switch.records), capture sanitising and the duplicate window all read their sets from here, so
a field added to the table is handled the same way everywhere.
"""

from __future__ import annotations

import enum
from typing import Callable

import attrs


class Shown(enum.Enum):
    """How a field's value may appear in a log line, an error, `decode` or terminal output."""

    AS_IS = "as is"
    MASKED_PAN = "first 6 and last 4 digits"
    CVV2_MASKED = "TLV with the CVV2 subelement hidden"  # field 48
    ICC_MASKED = "BER-TLV, card data tags masked (switch.wire.emv)"  # field 55
    HIDDEN = "length only"


@attrs.frozen
class Sensitivity:
    what: str
    shown: Shown
    to_terminal: bool  # may travel back to a terminal in a response
    in_advices: bool  # may sit in an advice queued for an issuer (the cardholder is gone by then)
    journaled: bool  # may be held in a journal row (the PAN is stored masked and hashed instead)


def _card_present_secret(what: str) -> Sensitivity:
    """Track data and PIN blocks: shown nowhere, kept nowhere, gone with the cardholder."""
    return Sensitivity(what, Shown.HIDDEN, to_terminal=False, in_advices=False, journaled=False)


SENSITIVITY: dict[str, Sensitivity] = {
    "2": Sensitivity("PAN", Shown.MASKED_PAN, to_terminal=True, in_advices=True, journaled=False),
    "14": Sensitivity("expiry date", Shown.AS_IS, to_terminal=False, in_advices=True, journaled=False),
    "34": Sensitivity("extended PAN", Shown.MASKED_PAN, to_terminal=False, in_advices=True, journaled=False),
    "35": _card_present_secret("track 2"),
    "36": _card_present_secret("track 3"),
    "45": _card_present_secret("track 1"),
    "48": Sensitivity("additional data (may carry CVV2)", Shown.CVV2_MASKED, to_terminal=True,
                      in_advices=True, journaled=False),  # advices carry it without the CVV2
    "52": _card_present_secret("PIN block"),
    "53": Sensitivity("security control information", Shown.HIDDEN, to_terminal=True, in_advices=True,
                      journaled=False),
    "55": Sensitivity("ICC (EMV) data", Shown.ICC_MASKED, to_terminal=True, in_advices=False, journaled=False),
    # A MAC belongs to one hop: an issuer's is not the terminal's (the switch MACs its own answers).
    "64": Sensitivity("MAC", Shown.HIDDEN, to_terminal=False, in_advices=False, journaled=False),
    "96": Sensitivity("message security code (key material)", Shown.HIDDEN, to_terminal=True,
                      in_advices=True, journaled=False),
    "128": Sensitivity("MAC", Shown.HIDDEN, to_terminal=False, in_advices=False, journaled=False),
}

CVV2_TAG = "92"  # field 48's CVV2 subelement


def _where(test: Callable[[Sensitivity], bool]) -> frozenset[str]:
    return frozenset(field for field, sensitivity in SENSITIVITY.items() if test(sensitivity))


PAN_FIELDS = _where(lambda s: s.shown is Shown.MASKED_PAN)
HIDDEN_FIELDS = _where(lambda s: s.shown is Shown.HIDDEN)
ICC_FIELDS = _where(lambda s: s.shown is Shown.ICC_MASKED)
NEVER_RETURNED = _where(lambda s: not s.to_terminal)
NOT_IN_ADVICES = _where(lambda s: not s.in_advices)
NOT_JOURNALED = _where(lambda s: not s.journaled)


def without(fields: dict[str, str], dropped: frozenset[str]) -> dict[str, str]:
    """A copy of `fields` without the keys in `dropped`, in the same order: a copy and the few
    deletions, found by a set intersection, all in C. For a message that loses a few of its
    twenty fields (every forwarded request's reversal) it costs 6k instructions where a dict
    comprehension testing each key cost 15k; where most go (what the duplicate window keeps of an
    answer), the deletions cost more than the comprehension, which stays there."""
    kept = fields.copy()
    for field in dropped & kept.keys():
        del kept[field]
    return kept
