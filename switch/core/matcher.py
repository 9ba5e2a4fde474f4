"""What one issuer link has in flight, free of I/O: match keys, the link's own STANs, deadlines.

jPOS QMUX's model: a request is parked under a match key (by default the response-class MTI,
field 11 and field 41) until a response with the same key comes back; a response that matches
nothing is the caller's to handle (late or unsolicited), never dropped here. The matcher can give
each request the link's own field 11, so keys never collide across terminals; it does so on a
copy, so the caller's message stays as it was.

The waiters are opaque: the switch's link parks tasks on them, the terminal emulator (and the
load generator through it) and capture replay their own records. Every request on a link waits
the same timeout, so deadlines come due in the order requests were sent and expiring is a look
at the front of a queue; a caller that times each request itself passes `timeout=None`. A
terminal may retransmit, so the same key can be in flight twice (`repeats=True`): answers go to
the oldest first.
"""

from __future__ import annotations

import collections
from typing import Generic, Iterator, TypeVar

from switch.wire.message import Message, response_mti

W = TypeVar("W")

DEFAULT_MATCH_KEY = ("mti", "11", "41")
# Response MTIs that answer the same request and are matched as one: ISO 8583:1993 has one
# answer (1430) to a reversal request and to a reversal advice, and which of 0410 and 0430 the
# 1987 side reads depends on the issuer echoing field 25; an 0400's answer read as an 0430 must
# still end its wait (else the terminal gets 91 and the issuer a second reversal).
SAME_ANSWER = {"0430": "0410"}
LAST_STAN = 999_999


class KeyInUse(Exception):
    """Another request with the same match key is still waiting for its answer (possible only
    when the link does not assign STANs): the responses could not be told apart."""


def next_stan(previous: int, low: int = 1, high: int = LAST_STAN) -> int:
    """The STAN after `previous` within `low`..`high` (by default 000001 to 999999; 000000 is
    not a STAN), then round again."""
    return previous + 1 if low <= previous < high else low


Key = tuple[str, ...]


class Matcher(Generic[W]):
    def __init__(self, match_key: tuple[str, ...] = DEFAULT_MATCH_KEY, timeout: float | None = 5.0,
                 assign_stan: bool = True, last_stan: int = 0, repeats: bool = False):
        if repeats and timeout is not None:
            raise ValueError("a matcher that takes repeated keys leaves timing to its caller (timeout=None)")
        self.match_key = match_key
        self.timeout = timeout
        self.assign_stan = assign_stan
        self.last_stan = last_stan  # the STAN given most recently (0: none yet)
        # The STANs this matcher gives, low..high: instances sharing a journal each have a range
        # of their own, so that two of them never send one issuer the same STAN at once.
        self.stan_range = (1, LAST_STAN)
        self.repeats = repeats
        self._pending: dict[Key, W] = {}  # the oldest waiter of each key
        self._later: dict[Key, collections.deque[W]] = {}  # with `repeats`: the others, oldest first
        self._deadlines: collections.deque[tuple[float, Key, W]] = collections.deque()

    def __len__(self) -> int:
        return len(self._pending) + sum(len(later) for later in self._later.values())

    def key(self, mti: str, message: Message) -> Key:
        fields = message.fields
        mti = SAME_ANSWER.get(mti, mti)
        return tuple([mti if part == "mti" else fields.get(part, "") for part in self.match_key])

    def request_key(self, request: Message) -> Key:
        """The key the response to `request` (as sent) will carry."""
        return self.key(response_mti(request.mti), request)

    def outgoing(self, request: Message) -> Message:
        """`request` as it goes on the wire: a copy with the link's next STAN when the link
        assigns them, else `request` itself (the caller does not change it afterwards)."""
        if not self.assign_stan:
            return request
        self.last_stan = next_stan(self.last_stan, *self.stan_range)
        sent = request.copy()
        sent.fields["11"] = f"{self.last_stan:06d}"
        return sent

    def park(self, sent: Message, waiter: W, now: float = 0.0) -> Key:
        """Wait for the answer to `sent` (until `now + timeout`, when the matcher times
        requests); returns its key."""
        key = self.request_key(sent)
        if key not in self._pending:
            self._pending[key] = waiter
        elif self.repeats:
            self._later.setdefault(key, collections.deque()).append(waiter)
        else:
            raise KeyInUse(sent.fields.get("11", ""))
        if self.timeout is not None:
            self._deadlines.append((now + self.timeout, key, waiter))
        return key

    def match(self, response: Message) -> tuple[Key, W | None]:
        """The waiter `response` answers (it leaves the matcher), or None: late or unsolicited."""
        key = self.key(response.mti, response)
        waiter = self._pending.pop(key, None)
        if waiter is not None and self._later:
            self._promote(key)
        return key, waiter

    def forget(self, key: Key, waiter: W) -> None:
        """The waiter gave up (timed out by its caller, cancelled): it leaves the matcher."""
        if self._pending.get(key) is waiter:
            del self._pending[key]
            self._promote(key)
        elif waiter in self._later.get(key, ()):
            self._later[key].remove(waiter)
            if not self._later[key]:
                del self._later[key]

    def _promote(self, key: Key) -> None:
        later = self._later.get(key)
        if later:
            self._pending[key] = later.popleft()
            if not later:
                del self._later[key]

    def next_deadline(self) -> float | None:
        """When the oldest request still parked times out; None when nothing is."""
        deadlines = self._deadlines
        while deadlines:
            deadline, key, waiter = deadlines[0]
            if self._pending.get(key) is waiter:
                return deadline
            deadlines.popleft()  # answered or forgotten already
        return None

    def expired(self, now: float) -> Iterator[W]:
        """The waiters whose deadline has passed (they leave the matcher), oldest first."""
        deadlines = self._deadlines
        while deadlines:
            deadline, key, waiter = deadlines[0]
            if self._pending.get(key) is not waiter:
                deadlines.popleft()
                continue
            if deadline > now:
                return
            deadlines.popleft()
            self.forget(key, waiter)
            yield waiter

    def drain(self) -> list[W]:
        """Everything in flight (the connection dropped): the matcher is empty afterwards."""
        waiters = list(self._pending.values())
        for later in self._later.values():
            waiters.extend(later)
        self._pending.clear()
        self._later.clear()
        self._deadlines.clear()
        return waiters
