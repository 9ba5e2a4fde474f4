"""The path of every transaction, in order: read this file to know what the switch does.

Every request passes the common steps, then the steps of its message class (jPOS
TransactionManager's participants and group selector are the model). Each step is a function of
the Context in switch.core.participants; it lets the transaction go on (None), ends it with an
`Answer`, or, as a generator, yields effects that switch.service performs (HSM, issuer link,
journal, store-and-forward, waiting). Adding a step is a module there and a line here.
"""

from __future__ import annotations

from typing import Callable, Generator

from switch.core.context import Answer, Context, Effect
from switch.core.participants.admission import shed_when_overloaded
from switch.core.participants.advices import queue_advice
from switch.core.participants.card_data import check_card_data_agrees
from switch.core.participants.card_security import check_card
from switch.core.participants.duplicates import recognise_retransmission
from switch.core.participants.forwarding import answer_from_issuer, forward_to_issuer, prepare_outgoing
from switch.core.participants.identity import identify_terminal
from switch.core.participants.mac import verify_mac
from switch.core.participants.network import answer_network_management
from switch.core.participants.reconciliation import reconcile_totals
from switch.core.participants.reversals import find_original, reverse_original
from switch.core.participants.risk import assess_risk, limit_rate
from switch.core.participants.routing import route_by_bin
from switch.core.participants.stand_in import stand_in_without_issuer
from switch.core.participants.validation import validate

Step = Generator[Effect, object, Answer | None]
Participant = Callable[[Context], Answer | Step | None]

COMMON: tuple[Participant, ...] = (
    shed_when_overloaded,  # 91 beyond max_in_flight
    validate,  # 12, 30
    identify_terminal,  # 58: a terminal or acquirer the listener does not know, or on the wrong connection
    verify_mac,  # 63: a terminal that must MAC its requests sent none, or a wrong one
    limit_rate,  # 91 beyond a terminal's or connection's rate (risk rules)
    recognise_retransmission,  # the first answer again, or 94
)

GROUPS: dict[str, tuple[Participant, ...]] = {
    "network": (
        answer_network_management,  # 0800 answered by the switch
    ),
    "authorisation": (  # 0100, 0200 and their repeats
        check_card_data_agrees,  # 30: track 2 against fields 2 and 14
        route_by_bin,  # 15
        assess_risk,  # risk rules: 59, 61, 65 or the rule's code; flags
        prepare_outgoing,
        check_card,  # HSM: CVV 82, CVV2 N7, PIN translated, PIN 55 / 75, 96
        forward_to_issuer,  # issuer link
        stand_in_without_issuer,  # issuer down or slow: stand-in, else 91
        answer_from_issuer,
    ),
    "reversal": (  # 0400, 0420
        find_original,  # 25 (an 0420 goes on to the card's issuer)
        reverse_original,  # online, else SAF
        route_by_bin,
        queue_advice,
    ),
    "reconciliation": (  # 0500, 0520: answered by the switch
        reconcile_totals,  # 00 when the sender's totals agree with the journal's, else 95
    ),
    "advice": (  # 0120, 0220
        check_card_data_agrees,  # 30: track 2 against fields 2 and 14
        route_by_bin,  # 15
        queue_advice,  # SAF
    ),
}


# Message class (a repeat as its original) -> its group.
GROUP_OF = {"0800": "network", "0100": "authorisation", "0200": "authorisation",
            "0400": "reversal", "0420": "reversal", "0120": "advice", "0220": "advice",
            "0500": "reconciliation", "0520": "reconciliation"}
PIPELINES = {mti: COMMON + GROUPS[group] for mti, group in GROUP_OF.items()}


def pipeline_for(mti: str) -> tuple[Participant, ...]:
    """Every step for a request of message class `mti`, in order. A class the switch does not
    handle gets the common steps only, where validation answers it 12."""
    return PIPELINES.get(mti, COMMON)
