"""Who may send on a listener, and who a terminal connection has shown itself to be.

`KnownTerminals` is a listener's policy, built from its config: the terminals (field 41) it
knows, whether others are refused, the acquirers (field 32) it accepts, and per terminal the
client-certificate subject or peer addresses it must come with. `ConnectionInfo` is what the
listener learnt about one connection (its peer, its certificate's subject) and the terminal it
is bound to once it has carried one. Values only: switch.core.participants.identity decides.
"""

from __future__ import annotations

import ipaddress
from typing import Mapping, Protocol

import attrs

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TerminalIdentity(Protocol):
    """What a configured terminal must come with (switch.config.TerminalConfig)."""

    @property
    def subject(self) -> str | None: ...  # the common name of its client certificate
    @property
    def peers(self) -> tuple[Network, ...]: ...  # addresses it may connect from; () any


@attrs.frozen
class KnownTerminals:
    """A listener's checks; a listener without any has none of these (switch.config)."""

    terminals: Mapping[str, TerminalIdentity]  # by terminal id
    only_known: bool = False  # terminals not in `terminals` are refused
    acquirers: frozenset[str] | None = None  # field 32 values accepted; None: any


@attrs.define(eq=False)
class ConnectionInfo:
    """One terminal connection, as the pipeline sees it. `number` names it for rate limits;
    `terminal` is set by the identity check when the connection is bound."""

    number: int
    peer: str = "unknown"  # host:port
    subject: str | None = None  # common name of the verified client certificate (TLS)
    terminal: str | None = None  # the terminal id the connection is bound to

    @property
    def address(self) -> str:
        return self.peer.rpartition(":")[0]


def comes_from(address: str, networks: tuple[Network, ...]) -> bool:
    """`address` (an IP address as the socket gives it) lies in one of `networks`."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # a peer address that does not parse is no allowed one
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 peer on a dual-stack socket
    return any(ip in network for network in networks)
