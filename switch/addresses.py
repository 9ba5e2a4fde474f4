"""HOST:PORT arguments, parsed the same way by every command that takes one."""

from __future__ import annotations

from switch.errors import UsageError


def parse_host_port(text: str, option: str) -> tuple[str, int]:
    """`host:port` (IPv6 in brackets) into its parts; a one-line usage error naming `option`."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{option}: expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)
