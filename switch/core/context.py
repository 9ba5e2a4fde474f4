"""What the pipeline's participants share: the transaction's context, the verdict that ends it,
the effects they ask the running service to perform, and the view of the switch they decide on.

A participant never performs I/O. It reads the context and the switch's view (routing table,
duplicate window, links' state, stand-in usage: values in memory), and either lets the
transaction go on, ends it with an `Answer`, or (as a generator) yields an effect and receives
the effect's result: `outcome = yield Exchange(...)`. switch.service performs the effects.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from typing import Any, Protocol, Sequence

import attrs

from switch.core.business import BusinessDay
from switch.core.matcher import Matcher
from switch.core.risk.engine import Assessment, Hit, RiskEngine
from switch.core.risk.facts import Facts
from switch.core.standin import StandIn, StandInLimits
from switch.core.states import State
from switch.core.terminals import ConnectionInfo, KnownTerminals
from switch.core.txn import Txn
from switch.core.window import DuplicateWindow
from switch.routing import RouteEntry, RoutingTable
from switch.wire.dialect import Dialect
from switch.wire.message import Message


# -- the view of the switch participants decide on -----------------------------------------

class IssuerView(Protocol):
    """An issuer's settings, as configured."""

    @property
    def name(self) -> str: ...
    @property
    def stand_in(self) -> StandInLimits | None: ...
    @property
    def max_in_flight(self) -> int | None: ...


class LinkView(Protocol):
    """An issuer link's state right now."""

    @property
    def name(self) -> str: ...
    @property
    def up(self) -> bool: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def config(self) -> IssuerView: ...
    @property
    def matcher(self) -> Matcher[Any]: ...


class TerminalView(Protocol):
    """What a listener knows of one terminal ([[listeners.terminals]])."""

    @property
    def tak(self) -> str | None: ...  # key store name of its MAC key
    @property
    def mac(self) -> bool: ...  # its requests must carry a MAC


class ListenerView(Protocol):
    """The listener a request came in on."""

    @property
    def dialect(self) -> Dialect: ...
    @property
    def terminals(self) -> Mapping[str, TerminalView]: ...  # by terminal id (field 41)


class SwitchView(Protocol):
    """What the running switch lets participants read (and, for its in-memory indexes, update)."""

    @property
    def routing(self) -> RoutingTable: ...
    @property
    def window(self) -> DuplicateWindow: ...
    @property
    def stand_in(self) -> StandIn: ...
    @property
    def links(self) -> dict[str, Any]: ...  # issuer name -> a LinkView
    @property
    def over_capacity(self) -> bool: ...  # more requests in flight than the switch takes
    @property
    def risk(self) -> RiskEngine: ...
    @property
    def shared_journal(self) -> bool: ...
    @property
    def business(self) -> BusinessDay: ...  # today's business date  # other instances use the journal: it decides duplicates and reversals


# -- the context --------------------------------------------------------------------------

@attrs.define(eq=False)
class Context:
    """One request on its way through the pipeline. Participants fill in what they decided."""

    request: Message
    txn: Txn
    pan: str | None
    acquirer_id: str | None  # the listener's, for field 32
    switch: SwitchView
    connection: ConnectionInfo | None = None  # the terminal connection it came on
    known: KnownTerminals | None = None  # the listener's known terminals; None: any may send
    prior: Txn | None = None  # the first transmission of a retransmission
    original: Txn | None = None  # what a reversal reverses
    route: RouteEntry | None = None
    link: LinkView | None = None  # the link chosen for the request (routing)
    outgoing: Message | None = None  # what goes to the issuer
    reversal: Message | None = None  # the 0420 that undoes what was sent
    prepared: bool = False  # that 0420 is in the journal: the request may be at an issuer from now on
    queued: bool = False  # something was queued for an issuer (SAF): money may move on this answer
    asked: float = 0.0  # when the request went to its issuer (trio's clock): its `issuer_ms` counts from then
    issuer_response: Message | None = None
    failure: LinkFailure | None = None  # why there is no issuer response
    reason: str | None = None  # for the journal, when the answer needs explaining
    original_trace: int | None = None
    risk_facts: Facts | None = None  # what the risk rules judge, read once from the request
    rate_hits: Sequence[Hit] | None = None  # rate limits that declined or flagged it
    assessment: Assessment | None = None  # the risk rules' findings, settled with the outcome
    listener: ListenerView | None = None  # the listener it came in on
    # The request as the terminal sent it (no length header, no TPDU): what its MAC covers.
    raw: bytes | None = attrs.field(default=None, repr=False)

    @property
    def connection_number(self) -> int | None:
        """The connection as the rate limits per connection key it."""
        return self.connection.number if self.connection is not None else None


# The verdict and the effects below are made on every transaction and never changed after:
# plain slotted records (attrs.define), not attrs.frozen, whose __init__ sets each field through
# object.__setattr__ and so costs about twice as much to make (6.5k against 2.8k instructions
# for four fields, docs/performance.md).
@attrs.define
class Answer:
    """The verdict that ends the pipeline: the terminal's response code, the transaction's
    state, and the journal's reason. `base` is a response whose fields the answer carries (the
    issuer's, or the first answer to a retransmission); `extra` fields are set on top."""

    code: str
    state: State
    reason: str | None = None
    base: Message | None = None
    extra: dict[str, str] | None = None


# -- effects: what participants ask the service to do -----------------------------------------

class LinkFailure(enum.Enum):
    """Why an exchange with the issuer gave no response."""

    UNAVAILABLE = "issuer unavailable"  # never sent: the link was down
    SATURATED = "issuer link saturated"  # never sent: the link holds its max_in_flight
    TIMED_OUT = "issuer timed out"  # sent, no answer in time: the issuer may have approved it
    DROPPED = "issuer link dropped with the request in flight"  # sent: it may have been approved
    KEY_IN_USE = "a request with the same match key is in flight at the issuer"
    MAC_FAILED = "issuer response failed its MAC check"  # sent: the issuer may have approved it


@attrs.define
class Warn:
    """Log a warning line `event` with `fields` (values the participant has masked); the
    service adds the listener's name. -> None"""

    event: str
    fields: dict[str, object]


@attrs.define
class Shed:
    """Count a request refused for overload (and notice when the overload starts). -> None"""


@attrs.define
class WaitFor:
    """Wait (at most the longest issuer timeout, and a second) until `txn` is finished. -> None"""

    txn: Txn


@attrs.define
class Claim:
    """On a shared journal: make `txn` the request of its terminal, STAN and transmission time,
    unless another instance's request holds them within the duplicate window. -> None (it is
    ours), or that request (a Txn read from the journal, `remote`)"""

    txn: Txn


@attrs.define
class ReserveStandIn:
    """On a shared journal: count a stand-in approval against the card's daily limits there,
    for every instance at once. -> None (counted), or the Decision refusing it"""

    issuer: str
    pan_hash: str
    amount: int
    limits: StandInLimits


@attrs.define
class ReleaseStandIn:
    """On a shared journal: a stood-in approval made on `approved_at` (wall clock) was reversed,
    `whole`ly or by `amount`: it no longer counts against the card's limits of that day. -> None"""

    issuer: str
    pan_hash: str
    amount: int
    whole: bool
    approved_at: float


@attrs.define
class JournalTotals:
    """The journal's reconciliation totals of `business_date` for a terminal (`by` "terminal",
    field 41) or an acquirer ("acquirer", field 32), in `currency` when given. -> Totals"""

    business_date: datetime.date
    by: str
    key: str
    currency: str | None


@attrs.define
class FindOriginal:
    """Look the journal up for an original older than the duplicate window. -> Txn | None"""

    tid: str
    mti: str
    stan: str
    transmitted: str


@attrs.define
class FindByRrn:
    """Look the journal up for an original by its retrieval reference. -> Txn | None"""

    rrn: str
    tid: str
    amount: int


@attrs.define
class CheckCard:
    """Have the HSM check the card (CVV, CVV2, PIN) and translate field 52 of `outgoing` to the
    issuer's key. -> CardChecked"""

    link: Any  # a LinkView: its issuer's keys and checks
    outgoing: Message


@attrs.define
class CardChecked:
    """What the HSM stage found: a decline (code, state, reason), or the PIN block under the
    issuer's key when there was one to translate."""

    decline: tuple[str, State, str] | None = None
    pin_block: str | None = None


@attrs.define(repr=False)
class VerifyMac:
    """Have the HSM check `mac` (hex) over `data` under the key store's key named `key` (a TAK
    or ZAK). -> True or False; None when the HSM could not tell (unreachable, an error: logged)"""

    key: str
    data: bytes
    mac: str

    def __repr__(self) -> str:  # neither the message (card data) nor its MAC
        return f"VerifyMac({self.key!r}, {len(self.data)} bytes)"


@attrs.define
class Exchange:
    """Send `message` (as the link will send it: its STAN from the link's matcher) on `link`
    and wait for the issuer's response. `reversal`, when given, is the 0420 that undoes the
    request; it is journaled (sealed) before the request leaves, so that recovery after a crash
    can send it. `own` says it is the transaction's own request (the issuer and field 90 it was
    sent under are kept on the Txn, and it is timed). -> Message | LinkFailure"""

    link: Any
    message: Message
    reversal: Message | None = None
    own: bool = True


@attrs.define
class Prepare:
    """Journal, before anything reaches an issuer, the 0420 that undoes it (sealed), with the
    original a reversal reverses and the amount it takes off: nothing that follows reaches an
    issuer or the terminal before it is durable. -> True; False (on a shared journal) when
    another instance's reversal of the original got there first"""

    reversal: Message
    original: Txn | None = None
    amount: int | None = None


@attrs.define
class Enqueue:
    """Durably queue `message` for `issuer` in store-and-forward. -> None"""

    issuer: str
    trace: int
    kind: str  # stand_in_advice, reversal, acquirer_advice
    message: Message


@attrs.define
class JournalReversed:
    """`original` was (partly) reversed: its new state and reversed amount to the journal. -> None"""

    original: Txn


Effect = (Warn | Shed | WaitFor | Claim | JournalTotals | ReserveStandIn | ReleaseStandIn | FindOriginal | FindByRrn | CheckCard | VerifyMac | Exchange | Prepare | Enqueue
          | JournalReversed)

