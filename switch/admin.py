"""Operator commands on a loopback TCP port: one line in, one JSON line out.

Each line is the admin token, a space, and a command:

    <token> reload-routes   re-read and check the BIN table; the old one stays if the new one is bad
    <token> reload-risk     re-read and check the risk rules; the old ones stay if the new ones are bad
    <token> reload-tls      re-read every TLS certificate, key and CA file (new handshakes use them);
                            an endpoint whose files cannot be used keeps its own
    <token> status          links (up, in flight, refused for their bound), requests in flight and
                            shed for overload, the event loop's worst lag and stalls, open SAF items,
                            route entries, risk rules and the keys their counts hold

The token (64 hex digits) is in `DATA_DIR/admin.token`, made with mode 0600 at the first start
(switch.admintoken); `cardswitch admin` reads it from there and is this port's client. A line
without the right token (compared in constant time) is refused with {"ok": false, "detail": ...},
logged (`admin_refused`: peer and why, never what was sent) and the connection closed; every
command is logged (`admin_command`: peer, command, ok). Each line carries the token, so nothing
about a connection needs remembering.

The port is opt-in (`[switch] admin_port`) and binds 127.0.0.1 unless `admin_host` says
otherwise: whoever can reach it and read the token can change routing.
"""

from __future__ import annotations

import hmac
import json
from functools import partial
from typing import TYPE_CHECKING

import trio

from switch import logs

if TYPE_CHECKING:
    from switch.service import Switch

COMMANDS = ("reload-routes", "reload-risk", "reload-tls", "cutover", "status")
MAX_LINE = 1024


async def answer(switch: Switch, line: str) -> dict:
    """The reply to one command line (tests and the server share it)."""
    command = line.strip()
    if command == "reload-routes":
        ok, detail = await switch.reload_routing()
    elif command == "reload-risk":
        ok, detail = await switch.reload_risk()
    elif command == "reload-tls":
        ok, detail = switch.reload_tls()
    elif command == "cutover":
        ok, detail = True, f"business date {switch.cut_over().isoformat()}"
    else:
        return status(switch, command)
    return {"ok": ok, "detail": detail}


def status(switch: Switch, command: str = "status") -> dict:
    """The reply to `status` (or to a command that is none of COMMANDS)."""
    if command == "status":
        return {"ok": True, "in_flight": switch.in_flight, "max_in_flight": switch.config.max_in_flight,
                "overloaded": switch.overloaded, "shed": switch.shed, "loop_lag": switch.loop_lag.status(),
                "routes": len(switch.routing), "risk_rules": len(switch.risk.rules),
                "risk_memory_keys": switch.risk.held(), "business_date": switch.business.date.isoformat(),
                "journal": {"store": "postgresql" if switch.journal.shared else "sqlite", "where": switch.journal.where,
                            "instance": switch.instance, "slot": switch.registered.slot,
                            "stalled": switch.journal.stalled},
                "links": {name: {"up": link.up, "in_flight": link.in_flight, "unmatched": link.unmatched,
                                 "saturated": switch.saturated[name]}
                          for name, link in switch.links.items()},
                "saf_open": {name: switch.saf.pending(name) for name in switch.links}}
    return {"ok": False, "detail": f"unknown command; expected one of: {', '.join(COMMANDS)}"}


async def serve_admin(switch: Switch, host: str, port: int, token: str, *,
                      task_status=trio.TASK_STATUS_IGNORED) -> None:
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    logs.event("admin_up", host=host, port=bound)
    task_status.started(bound)
    await trio.serve_listeners(partial(_session, switch, token.encode("ascii")), listeners)


def refusal(line: bytes, token: bytes) -> str | None:
    """Why a command line is refused (no token, a wrong one), or None when its token is right."""
    presented, space, _ = line.strip().partition(b" ")
    if not space:
        return "no token"
    return None if hmac.compare_digest(presented, token) else "wrong token"


async def _session(switch: Switch, token: bytes, stream: trio.SocketStream) -> None:
    peer = _peer(stream)
    buffer = b""
    async with stream:
        try:
            while data := await stream.receive_some(MAX_LINE):
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    refused = refusal(line, token)
                    if refused is not None:
                        logs.warning("admin_refused", peer=peer, reason=refused)
                        detail = f"{refused}: send '<token> <command>'; the token is in the switch's data directory"
                        await stream.send_all(json.dumps({"ok": False, "detail": detail}).encode() + b"\n")
                        return
                    command = line.strip().partition(b" ")[2].decode("utf-8", "replace").strip()
                    reply = await answer(switch, command)
                    logs.event("admin_command", peer=peer, command=command if command in COMMANDS else "unknown",
                               ok=reply.get("ok"))
                    await stream.send_all(json.dumps(reply).encode() + b"\n")
                if len(buffer) > MAX_LINE:
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "unknown"
    return f"{host}:{port}"
