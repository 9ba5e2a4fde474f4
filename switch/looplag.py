"""How late the event loop runs: the switch's own stalls, as an operator sees them.

Every request shares one event loop, so whatever holds it (a collector pass, a blocked write, a
large dictionary rebuilding its table) delays every request in flight at once. A task that asks
to wake every INTERVAL and notes how late it woke measures exactly that. `cardswitch admin
status` shows the worst lag of the last minute or two and how many stalls there were; a stall
(a lag over STALL_MS) is logged as a warning, with how long it was (at most one line a second).
"""

from __future__ import annotations

import trio

from switch import logs

INTERVAL = 0.1  # seconds between looks
STALL_MS = 50.0  # a lag above this is a stall: logged
LOG_EVERY = 1.0  # seconds: at most one stall warning this often (the count keeps all of them)
MINUTE = 60.0


class LoopLag:
    def __init__(self) -> None:
        self.stalls = 0
        self._worst_ms = 0.0  # in the current minute
        self._previous_worst_ms = 0.0  # in the minute before
        self._minute_ends: float | None = None
        self._logged_at = float("-inf")

    def status(self) -> dict:
        return {"worst_ms": round(max(self._worst_ms, self._previous_worst_ms), 1), "stalls": self.stalls}

    def record(self, lag_ms: float, now: float) -> None:
        """One look: woke `lag_ms` late at `now` (seconds, trio's clock)."""
        if self._minute_ends is None:
            self._minute_ends = now + MINUTE
        elif now >= self._minute_ends:
            self._previous_worst_ms, self._worst_ms = self._worst_ms, 0.0
            self._minute_ends = now + MINUTE
        self._worst_ms = max(self._worst_ms, lag_ms)
        if lag_ms > STALL_MS:
            self.stalls += 1
            if now - self._logged_at >= LOG_EVERY:  # a loop that lags all the time: not ten lines a second
                self._logged_at = now
                logs.warning("event_loop_stalled", lag_ms=round(lag_ms, 1), stalls=self.stalls)

    async def run(self) -> None:
        while True:
            due = trio.current_time() + INTERVAL
            await trio.sleep_until(due)
            now = trio.current_time()
            self.record((now - due) * 1000, now)
