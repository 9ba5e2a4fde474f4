"""HOST:PORT arguments, parsed the same way by every command that takes one.

`parse_host_port` reads one HOST:PORT value; `address_option` is the one way a command that still
has separate --host/--port options (kept as aliases) settles on its address.
"""

from __future__ import annotations

from switch.errors import UsageError


def parse_host_port(text: str, option: str, *, any_port: bool = False) -> tuple[str, int]:
    """`host:port` (IPv6 in brackets) into its parts; a one-line usage error naming `option`.
    `any_port`: a listening address, where port 0 means any free port."""
    host, _, port = text.rpartition(":")
    lowest = 0 if any_port else 1
    if not host or not port.isdigit() or not lowest <= int(port) < 65536:
        raise UsageError(f"{option}: expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def address_option(text: str | None, option: str, host: str | None, port: int | None, *,
                   default_host: str, default_port: int | None, any_port: bool = False) -> tuple[str, int]:
    """The address from `option` (HOST:PORT), or from the older --host/--port aliases, or the
    defaults; giving both forms is a usage error. Ports out of range name --port."""
    if text is not None:
        if host is not None or port is not None:
            raise UsageError(f"{option}: give HOST:PORT, or --host/--port, not both")
        return parse_host_port(text, option, any_port=any_port)
    port = default_port if port is None else port
    if port is None:
        raise UsageError(f"{option} HOST:PORT (or --port) is required")
    if not (0 if any_port else 1) <= port <= 65535:
        lowest = "0" if any_port else "1"
        raise UsageError(f"--port: expected a port from {lowest} to 65535, got {port}")
    return (default_host if host is None else host), port
