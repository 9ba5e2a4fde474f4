"""Store-and-forward: advices the issuer must receive, delivered whenever it can take them.

Reversal advices (0420), stand-in advices (0120/0220) and the advices terminals send (0120, 0220,
0420) are written to the journal before they are relied on, so they survive a restart, kill -9 included. One forwarder per issuer sends what
is due whenever the link is up: the first attempt with the advice MTI, later ones as repeats
(0421, 0121, 0221), each retried with capped exponential backoff until the issuer acknowledges
it (0430, 0130, 0230). An item that keeps failing is parked after `retry_limit` attempts and
reported; it never blocks the items behind it, because each item has its own next-attempt time.
The message is sealed in the journal (see switch.vault): it carries the PAN.

An advice that tells the issuer of an answer the switch gave (a stand-in approval, an acquirer's
advice acknowledged) is held until that answer's journal row is committed (`release`): a kill
between the two must not have told the issuer of an answer no terminal got. At the next start
recovery withdraws the advices of requests left unanswered (switch.recovery).
"""

from __future__ import annotations

import time

import attrs
import trio

from switch import logs
from switch.config import SafConfig
from switch.core.codes import RC
from switch.core.messages import REPEAT_MTI
from switch.journal import BatchedJournal
from switch.core.matcher import KeyInUse
from switch.links import IssuerLink, LinkDropped, LinkMacFailed, LinkTimeout, LinkUnavailable
from switch.vault import Vault
from switch.wire.dialect import MessageEncodeError
from switch.wire.message import Message

OPEN_STATUSES = ("queued", "retrying")
STAND_IN_ADVICE = "stand_in_advice"
# Advices of an answer the switch gives the terminal: held until that answer is on disk.
ANSWER_ADVICES = (STAND_IN_ADVICE, "acquirer_advice")


@attrs.define
class SafItem:
    id: int
    issuer: str
    trace: int | None
    kind: str
    message: Message
    status: str = "queued"
    attempts: int = 0
    next_attempt: float = 0.0
    held: bool = False  # until its request's answer is committed (ANSWER_ADVICES)


class StoreAndForward:
    """The items of one instance (`owner`): those it queued, and those it took over from the
    previous run or a dead instance (switch.instances). On a shared journal every item has one
    owner at a time, so each is delivered by one instance."""

    def __init__(self, journal: BatchedJournal, vault: Vault, links: dict[str, IssuerLink], config: SafConfig,
                 owner: int):
        self.journal = journal
        self.vault = vault
        self.links = links
        self.config = config
        self.owner = owner
        self._items: dict[str, list[SafItem]] = {name: [] for name in links}
        self._wake = {name: trio.Event() for name in links}
        self._known: set[int] = set()  # ids held in memory (loaded or queued here)
        self._held: dict[int, list[SafItem]] = {}  # request trace -> its advices not to send yet

    def load(self) -> int:
        """Pick up the open items this instance owns and does not hold yet: at start, what the
        previous run left; later, what it took over from a dead instance. Start-up reads on
        the loop's connection: a short query, rare."""
        rows = self.journal.read("SELECT * FROM saf WHERE owner = ? AND status IN (?, ?) ORDER BY id",
                                 (self.owner, *OPEN_STATUSES))
        rows = [row for row in rows if row["id"] not in self._known]
        for row in rows:
            self._known.add(row["id"])
            if row["issuer"] not in self._items:
                logs.warning("saf_item_without_issuer", saf_id=row["id"], issuer=row["issuer"])
                continue
            try:
                fields = self.vault.open(row["payload"])
            except Exception as exc:  # another data key, or a damaged row: park it, start anyway
                self._park_unreadable(row["id"], type(exc).__name__)
                continue
            self._items[row["issuer"]].append(SafItem(
                id=row["id"], issuer=row["issuer"], trace=row["trace"], kind=row["kind"],
                message=Message(row["mti"], fields), status=row["status"], attempts=row["attempts"],
                next_attempt=0.0))
            self._wake[row["issuer"]].set()
        return len(rows)

    def _park_unreadable(self, saf_id: int, error: str) -> None:
        logs.warning("saf_parked", saf_id=saf_id, error=f"payload cannot be opened ({error})")
        self.journal.execute(
            "UPDATE saf SET status = 'parked', last_error = ?, updated_at = ? WHERE id = ?",
            (f"payload cannot be opened ({error})", time.time(), saf_id))

    def pending(self, issuer: str) -> int:
        return len(self._items.get(issuer, ()))

    async def enqueue(self, issuer: str, trace: int | None, kind: str, message: Message) -> SafItem:
        """Persist an advice (durably) and hand it to the issuer's forwarder."""
        now = time.time()
        sealed = self.vault.seal(message.fields)

        def insert(connection) -> int:
            return connection.execute(
                "INSERT INTO saf (issuer, trace, kind, mti, payload, status, attempts, next_attempt,"
                " created_at, updated_at, owner) VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?) RETURNING id",
                (issuer, trace, kind, message.mti, sealed, now, now, now, self.owner)).fetchone()[0]

        item = SafItem(id=await self.journal.commit(insert), issuer=issuer, trace=trace, kind=kind,
                       message=message)
        self._known.add(item.id)
        self._items[issuer].append(item)
        if kind in ANSWER_ADVICES and trace is not None:
            item.held = True
            self._held.setdefault(trace, []).append(item)
        else:
            self._wake[issuer].set()
        logs.event("saf_queued", issuer=issuer, saf_id=item.id, kind=kind, mti=message.mti, trace=trace)
        return item

    def release(self, trace: int) -> None:
        """Request `trace`'s answer is committed: its advices may go."""
        for item in self._held.pop(trace, ()):
            item.held = False
            self._wake[item.issuer].set()

    def withdraw(self, trace: int) -> None:
        """Request `trace` ended without the answer its advices tell of: they never go."""
        for item in self._held.pop(trace, ()):
            self._items[item.issuer].remove(item)
            self._known.discard(item.id)
            item.status = "withdrawn"
            self._save(item)
            logs.event("saf_withdrawn", issuer=item.issuer, saf_id=item.id, kind=item.kind, trace=trace)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for issuer in self.links:
                nursery.start_soon(self._forward, issuer)

    async def _forward(self, issuer: str) -> None:
        link = self.links[issuer]
        items = self._items[issuer]
        while True:
            if not link.up:
                await link.connected.wait()
            now = trio.current_time()
            due = [item for item in items if item.next_attempt <= now and not item.held]
            if not due:
                self._wake[issuer] = trio.Event()
                wait = min((item.next_attempt for item in items if not item.held), default=now + 3600) - now
                with trio.move_on_after(max(wait, 0.001)):
                    await self._wake[issuer].wait()
                continue
            for item in due:
                if not link.up:
                    break
                await self._attempt(link, item)
                if item.status not in OPEN_STATUSES:
                    items.remove(item)
                    self._known.discard(item.id)

    async def _attempt(self, link: IssuerLink, item: SafItem) -> None:
        message = item.message.copy()
        if item.attempts:
            message.mti = REPEAT_MTI.get(message.mti, message.mti)
        try:
            if item.kind == STAND_IN_ADVICE:  # its STAN is its name at the issuer: repeats keep it
                response = await link.exchange(message)
            else:
                response = await link.request(message)
        except (LinkUnavailable, LinkDropped, LinkTimeout, KeyInUse, MessageEncodeError) as exc:
            item.attempts += 1
            error = {LinkUnavailable: "issuer unavailable", LinkDropped: "issuer link dropped",
                     LinkTimeout: "issuer timeout", LinkMacFailed: "issuer response failed its MAC check",
                     KeyInUse: "a request with the same match key is in flight"}.get(
                type(exc), "message cannot be encoded for this issuer")
            if isinstance(exc, MessageEncodeError):
                item.attempts = self.config.retry_limit  # retrying cannot help
            if item.attempts >= self.config.retry_limit:
                item.status = "parked"
                logs.warning("saf_parked", issuer=item.issuer, saf_id=item.id, attempts=item.attempts, error=error)
            else:
                item.status = "retrying"
                delay = min(self.config.backoff_min * 2 ** (item.attempts - 1), self.config.backoff_max)
                item.next_attempt = trio.current_time() + delay
            self._save(item, error=error)
            return
        except Exception as exc:  # a bug in building or sending this item: it is parked, never the switch
            item.attempts += 1
            item.status = "parked"
            logs.warning("saf_parked", issuer=item.issuer, saf_id=item.id, attempts=item.attempts,
                         error=f"internal error ({type(exc).__name__})")
            self._save(item, error=f"internal error ({type(exc).__name__})")
            return
        item.attempts += 1
        item.status = "acknowledged"
        self._save(item, response_code=response.get("39"))
        logs.event("saf_acknowledged", issuer=item.issuer, saf_id=item.id, kind=item.kind,
                   mti=message.mti, rc=response.get("39"), attempts=item.attempts)
        if response.get("39") == RC.ORIGINAL_NOT_FOUND:  # nothing reversed: say so, for recon to check
            logs.warning("saf_original_unknown_at_issuer", issuer=item.issuer, saf_id=item.id, kind=item.kind,
                         trace=item.trace)

    def _save(self, item: SafItem, error: str | None = None, response_code: str | None = None) -> None:
        wall_next = time.time() + max(0.0, item.next_attempt - trio.current_time())
        self.journal.execute(
            "UPDATE saf SET status = ?, attempts = ?, next_attempt = ?, updated_at = ?, last_error = ?,"
            " response_code = ? WHERE id = ?",
            (item.status, item.attempts, wall_next, time.time(), error, response_code, item.id))
