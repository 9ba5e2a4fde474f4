"""`cardswitch admin reload-routes|reload-risk|reload-tls|status --admin HOST:PORT`: talk to a running switch's admin port.

Every command carries the admin token, read from `--token-file`, by default `admin.token` in
the switch's data directory (`--data-dir`, default cardswitch-data). Exits 0 when the switch did
it, 1 when it refused (the reason is printed: a wrong token too), 2 when there is no token to
read, 3 without an answer.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

from switch.addresses import parse_host_port
from switch.admin import COMMANDS
from switch.admintoken import TOKEN_FILE, read_token
from switch.errors import ConfigError, NoAnswer, UsageError

TIMEOUT = 10.0


def register(subparsers) -> None:
    parser = subparsers.add_parser("admin", help="send an operator command to a running switch")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--admin", default="127.0.0.1:8599", help="HOST:PORT of the switch's admin_port")
    parser.add_argument("--data-dir", default="cardswitch-data",
                        help=f"the switch's data directory, where its {TOKEN_FILE} is")
    parser.add_argument("--token-file", help=f"the admin token (default: DATA_DIR/{TOKEN_FILE})")
    parser.set_defaults(func=run)


def run(args) -> int:
    address = parse_host_port(args.admin, "--admin")
    path = Path(args.token_file) if args.token_file else Path(args.data_dir) / TOKEN_FILE
    try:
        token = read_token(path)
    except ConfigError as exc:
        option = "--token-file" if args.token_file else "--data-dir"
        raise UsageError(f"{option}: {exc.file}: expected {exc.expected}") from None
    try:
        with socket.create_connection(address, timeout=TIMEOUT) as sock:
            sock.sendall(f"{token} {args.command}\n".encode())
            reply = sock.makefile("rb").readline()
    except OSError as exc:
        raise NoAnswer(f"--admin {args.admin}: cannot reach the admin port ({exc.strerror or exc})") from None
    if not reply:
        raise NoAnswer(f"--admin {args.admin}: the switch closed the connection without answering")
    answer = json.loads(reply)
    print(json.dumps(answer, indent=2))
    return 0 if answer.get("ok") else 1
