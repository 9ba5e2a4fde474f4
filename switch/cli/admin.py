"""`cardswitch admin reload-routes|reload-risk|status --admin HOST:PORT`: talk to a running switch's admin port.

Exits 0 when the switch did it, 1 when it refused (the reason is printed), 3 without an answer.
"""

from __future__ import annotations

import json
import socket

from switch.addresses import parse_host_port
from switch.admin import COMMANDS
from switch.errors import NoAnswer

TIMEOUT = 10.0


def register(subparsers) -> None:
    parser = subparsers.add_parser("admin", help="send an operator command to a running switch")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--admin", default="127.0.0.1:8599", help="HOST:PORT of the switch's admin_port")
    parser.set_defaults(func=run)


def run(args) -> int:
    address = parse_host_port(args.admin, "--admin")
    try:
        with socket.create_connection(address, timeout=TIMEOUT) as sock:
            sock.sendall(args.command.encode() + b"\n")
            reply = sock.makefile("rb").readline()
    except OSError as exc:
        raise NoAnswer(f"--admin {args.admin}: cannot reach the admin port ({exc.strerror or exc})") from None
    if not reply:
        raise NoAnswer(f"--admin {args.admin}: the switch closed the connection without answering")
    answer = json.loads(reply)
    print(json.dumps(answer, indent=2))
    return 0 if answer.get("ok") else 1
