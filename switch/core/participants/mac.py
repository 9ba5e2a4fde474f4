"""Message MACs from terminals: a terminal whose profile requires them ([[listeners.terminals]]
`mac = true`) has the MAC in field 64 (128 with a secondary bitmap) checked by the HSM under its
TAK, over the message exactly as it sent it (switch.wire.macs says which bytes). A MAC that is
missing, misplaced or wrong gets 63 and goes no further: nothing is forwarded. The journal's
reason names the field, never the MAC. Terminals without that profile pay nothing here."""

from __future__ import annotations

from typing import Generator

from switch.core.codes import RC
from switch.core.context import Answer, Context, Effect, VerifyMac
from switch.core.states import State
from switch.wire.macs import MacInput, mac_failure, received_mac


def verify_mac(ctx: Context) -> Generator[Effect, object, Answer | None] | Answer | None:
    listener = ctx.listener
    terminal = listener.terminals.get(ctx.txn.tid) if listener is not None else None
    if terminal is None or not terminal.mac:
        return None
    assert listener is not None and terminal.tak is not None  # the config requires a TAK with mac = true
    found = received_mac(ctx.request, ctx.raw or b"", listener.dialect)
    if isinstance(found, str):
        return Answer(RC.MAC_FAILED, State.REJECTED, found)
    return _verify(terminal.tak, found)


def _verify(tak: str, found: MacInput) -> Generator[Effect, object, Answer | None]:
    verified = yield VerifyMac(tak, found.data, found.mac)
    failure = mac_failure(found.field, verified if isinstance(verified, bool) else None)
    if failure is None:
        return None
    if verified is None:  # the HSM's fault, not the terminal's
        return Answer(RC.SYSTEM_ERROR, State.FAILED, failure)
    return Answer(RC.MAC_FAILED, State.REJECTED, failure)
