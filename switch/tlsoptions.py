"""The TLS options of the commands that connect or listen, declared and checked in one place.

Clients (`terminal`, `load`, `replay`): `--tls` with `--ca` (the CA to check the switch's
certificate against; the system's trusted CAs without it) and `--cert`/`--key` (a client
certificate, for listeners that ask for one). Servers (`hsm serve`): `--cert`/`--key` turn TLS
on, `--ca` checks client certificates (required unless `--client-certs` says otherwise).
Every mistake is one line naming the option, exit code 2, before anything connects.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from switch.errors import UsageError
from switch.tls import CLIENT_CERTS, TlsConfig, TlsEndpoint, TlsError


def add_client_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("TLS")
    group.add_argument("--tls", action="store_true", help="connect over TLS (1.2 or later)")
    group.add_argument("--ca", type=Path, metavar="FILE",
                       help="--tls: PEM CA certificates the switch's certificate is checked against "
                            "(default: the system's trusted CAs)")
    group.add_argument("--cert", type=Path, metavar="FILE", help="--tls: client certificate (PEM), if the listener asks")
    group.add_argument("--key", type=Path, metavar="FILE", help="--tls: the private key of --cert (unencrypted PEM)")


def client_endpoint(args: argparse.Namespace) -> TlsEndpoint | None:
    """The client's TLS endpoint from its options; None without --tls."""
    if not args.tls:
        given = next((f"--{name}" for name in ("ca", "cert", "key") if getattr(args, name) is not None), None)
        if given:
            raise UsageError(f"{given}: only with --tls")
        return None
    return _endpoint(TlsConfig(cert=args.cert, key=args.key, ca=args.ca), server_side=False)


def add_server_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("TLS")
    group.add_argument("--cert", type=Path, metavar="FILE", help="serve TLS with this certificate (PEM)")
    group.add_argument("--key", type=Path, metavar="FILE", help="the private key of --cert (unencrypted PEM)")
    group.add_argument("--ca", type=Path, metavar="FILE", help="check client certificates against these CAs (PEM)")
    group.add_argument("--client-certs", choices=tuple(CLIENT_CERTS),
                       help="client certificates: none, optional or required (default: required with --ca)")


def server_config(args: argparse.Namespace) -> TlsConfig | None:
    """The server's TLS settings from its options, checked; None without --cert."""
    if args.cert is None:
        given = next((f"--{name.replace('_', '-')}" for name in ("key", "ca", "client_certs")
                      if getattr(args, name) is not None), None)
        if given:
            raise UsageError(f"{given}: only with --cert (TLS)")
        return None
    client_certs = args.client_certs or ("required" if args.ca is not None else "none")
    config = TlsConfig(cert=args.cert, key=args.key, ca=args.ca, client_certs=client_certs)
    _endpoint(config, server_side=True)
    return config


def _endpoint(config: TlsConfig, *, server_side: bool) -> TlsEndpoint:
    try:
        return TlsEndpoint(config, server_side=server_side)
    except TlsError as exc:
        raise UsageError(f"--{exc.key.replace('_', '-')}: {exc.expected}") from None
