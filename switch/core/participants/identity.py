"""Known terminals: on a listener that names its terminals or acquirers, a request from anyone
else is answered 58 (logged as `terminal_refused`) and goes no further: not checked for
duplicates, not rate-counted, never forwarded. Network management (0800) and reversals too: a
terminal the listener does not know has nothing to sign on or reverse there.

What is checked, in order (switch.core.terminals holds the values):

1. field 32, or the listener's acquirer id when it is absent, against `allowed_acquirers`;
2. field 41 against the listed terminals, when the listener takes only those (no field 41 there
   is refused too: a check never passes because its input is missing);
3. a terminal that names a certificate subject must come on a connection whose verified client
   certificate has that common name; one that names peer addresses, from one of them;
4. on a listener that takes only its listed terminals, a connection is bound to the first
   terminal id it carries, and another terminal id on it is refused. A terminal that names a
   certificate subject is bound to that subject instead (one certificate may speak for several).

A listener without any of these (`ctx.known` None) costs one attribute read per request.
"""

from __future__ import annotations

from typing import Generator

from switch.core.codes import RC
from switch.core.context import Answer, Context, Effect, Warn
from switch.core.states import State
from switch.core.terminals import ConnectionInfo, KnownTerminals, comes_from
from switch.wire.masking import mask_pan_like
from switch.wire.message import Message


def identify_terminal(ctx: Context) -> Generator[Effect, object, Answer | None] | None:
    known = ctx.known
    if known is None:
        return None
    reason = refusal(known, ctx.request, ctx.connection, ctx.acquirer_id)
    if reason is None:
        return None
    return _refuse(ctx, reason)


def refusal(known: KnownTerminals, request: Message, connection: ConnectionInfo | None,
            acquirer_id: str | None) -> str | None:
    """Why `request` may not come on this connection, or None when it may (binding the
    connection to its terminal if that is the first it carries)."""
    fields = request.fields
    if known.acquirers is not None and fields.get("32", acquirer_id) not in known.acquirers:
        return "acquirer (field 32) not allowed on this listener"
    tid = fields.get("41")
    terminal = known.terminals.get(tid) if tid is not None else None
    if terminal is None:
        if not known.only_known:
            return None
        return "terminal not known on this listener" if tid else "no terminal id (field 41)"
    subject = connection.subject if connection is not None else None
    if terminal.subject is not None and subject != terminal.subject:
        return ("client certificate subject does not match the terminal's" if subject
                else "no client certificate, and the terminal must present one")
    if terminal.peers and (connection is None or not comes_from(connection.address, terminal.peers)):
        return "peer address not allowed for this terminal"
    if known.only_known and terminal.subject is None and connection is not None:
        if connection.terminal is None:
            connection.terminal = tid
        elif connection.terminal != tid:
            return "connection bound to another terminal"
    return None


def _refuse(ctx: Context, reason: str) -> Generator[Effect, object, Answer | None]:
    tid = ctx.request.get("41")
    yield Warn("terminal_refused", {"tid": mask_pan_like(tid) if tid else None,
                                    "peer": ctx.connection.peer if ctx.connection is not None else None,
                                    "reason": reason})
    return Answer(RC.NOT_PERMITTED_TO_TERMINAL, State.REJECTED, reason)
