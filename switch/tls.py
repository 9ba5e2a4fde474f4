"""TLS on every link: SSL contexts made from `[... .tls]` settings, and the handshake.

One `TlsEndpoint` per thing the switch secures (a terminal listener, an issuer link, the HSM
link; the emulators and client commands use the same). It holds the current context; `reload()`
makes a new one from the same files, so a renewed certificate is used by the next handshake
while connections already open keep theirs. `secure()` runs the handshake under a timeout and
turns every way it can fail (a plain-TCP peer, an old protocol version, a certificate that does
not verify, silence) into `HandshakeFailed` with a one-line reason, never a traceback.

TLS 1.2 is the floor (`min_version = "1.3"` raises it). Private keys must be unencrypted PEM
files: the switch never prompts for a password, and no key material ever reaches a log line.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import attrs
import trio
from cryptography import x509

from switch import logs
from switch.errors import CardswitchError
from switch.streams import peer_name

MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
CLIENT_CERTS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}

# OpenSSL's reasons for the failures an operator meets most, said the way they read them.
_REASONS = {
    "WRONG_VERSION_NUMBER": "not a TLS handshake (a plain-TCP client?)",
    "HTTP_REQUEST": "not a TLS handshake (an HTTP request)",
    "UNSUPPORTED_PROTOCOL": "protocol version below the minimum (TLS 1.2)",
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol version refused by the peer",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "no client certificate",
    "UNEXPECTED_EOF_WHILE_READING": "connection closed during the handshake",
}


@attrs.frozen
class TlsConfig:
    """One `tls` table. A server (listener, `hsm serve`, issuer emulator) needs `cert` and `key`,
    and `ca` to check client certificates against; a client (issuer link, HSM link, terminal)
    checks the server against `ca` (the system's trusted CAs without it) and `server_name`
    (default: the host it connects to), and shows `cert` and `key` when the server asks."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    client_certs: str = "none"  # server side: none, optional or required
    server_name: str | None = None  # client side
    min_version: str = "1.2"


class TlsError(CardswitchError):
    """A TLS setting that cannot be used: `key` is the setting at fault (cert, key, ca, ...)."""

    def __init__(self, key: str, expected: str):
        super().__init__(f"{key}: {expected}")
        self.key = key
        self.expected = expected


class HandshakeFailed(Exception):
    """The peer and the switch did not agree on a secure channel; `reason` is one line."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _PasswordAsked(Exception):
    pass


def _no_password() -> bytes:
    raise _PasswordAsked  # OpenSSL would otherwise prompt on the terminal for it


def _is_certificate(path: Path) -> bool:
    try:
        return bool(x509.load_pem_x509_certificates(path.read_bytes()))
    except (OSError, ValueError):
        return False


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except _PasswordAsked:
        raise TlsError("key", "an unencrypted PEM private key (the switch asks for no password)") from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsError("key", f"the private key of the certificate in {cert.name}") from None
        if not _is_certificate(cert):
            raise TlsError("cert", "a PEM certificate (or chain)") from None
        raise TlsError("key", "a PEM private key") from None
    except OSError as exc:
        raise TlsError("cert", f"readable certificate and key files ({exc.strerror})") from None


def _load_ca(context: ssl.SSLContext, ca: Path) -> None:
    try:
        context.load_verify_locations(cafile=ca)
    except (ssl.SSLError, OSError):
        raise TlsError("ca", "a readable file of PEM CA certificates") from None


def server_context(config: TlsConfig) -> ssl.SSLContext:
    if config.cert is None or config.key is None:
        raise TlsError("cert", "a certificate and its key (cert and key) to serve TLS with")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_VERSIONS[config.min_version]
    _load_chain(context, config.cert, config.key)
    if config.ca is not None:
        _load_ca(context, config.ca)
    elif config.client_certs != "none":
        raise TlsError("ca", "the CA that client certificates are checked against")
    context.verify_mode = CLIENT_CERTS[config.client_certs]
    return context


def client_context(config: TlsConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # checks the certificate and the name
    context.minimum_version = MIN_VERSIONS[config.min_version]
    if config.ca is not None:
        _load_ca(context, config.ca)
    else:
        context.load_default_certs()
    if (config.cert is None) != (config.key is None):
        raise TlsError("cert" if config.cert is None else "key", "cert and key together, or neither")
    if config.cert is not None and config.key is not None:
        _load_chain(context, config.cert, config.key)
    return context


class TlsEndpoint:
    """The TLS side of one listener or link: its current context, remade by `reload()`."""

    def __init__(self, config: TlsConfig, *, server_side: bool):
        self.config = config
        self.server_side = server_side
        self.context = self._build()

    def _build(self) -> ssl.SSLContext:
        return server_context(self.config) if self.server_side else client_context(self.config)

    def reload(self) -> None:
        """Read the certificate, key and CA files again; raises TlsError and keeps the current
        context when they cannot be used. Handshakes from now on use the new context."""
        self.context = self._build()

    async def secure(self, stream: trio.SocketStream, timeout: float, host: str | None = None) -> trio.SSLStream:
        """`stream` after a TLS handshake of at most `timeout` seconds; `host` is the name a
        client checks the server's certificate against (unless `server_name` says another).
        On any failure the socket is closed; HandshakeFailed carries the reason."""
        secured = trio.SSLStream(stream, self.context, server_side=self.server_side,
                                 server_hostname=None if self.server_side else self.config.server_name or host,
                                 https_compatible=True)  # a peer that just closes TCP has closed, not failed
        try:
            with trio.fail_after(timeout):
                await secured.do_handshake()
        except trio.TooSlowError:
            stream.socket.close()
            raise HandshakeFailed(f"no TLS handshake within {round(timeout * 1000)} ms") from None
        except (trio.BrokenResourceError, OSError) as exc:
            stream.socket.close()
            raise HandshakeFailed(failure_reason(exc)) from None
        except BaseException:  # cancelled (shutdown): nothing to say, but nothing left open
            stream.socket.close()
            raise
        return secured

    async def accept(self, stream: trio.SocketStream, timeout: float,
                     **where: str) -> trio.SSLStream[trio.SocketStream] | None:
        """A server's side of `secure()`: None when the handshake failed, which is logged once
        (`tls_handshake_failed`, with `where` the connection came: listener=..., issuer=...)."""
        peer = peer_name(stream.socket)
        try:
            return await self.secure(stream, timeout)
        except HandshakeFailed as exc:
            logs.warning("tls_handshake_failed", **where, peer=peer, reason=exc.reason)
            return None


def reload_endpoints(endpoints: dict[str, TlsEndpoint]) -> tuple[bool, str]:
    """Reload each endpoint (named by what it secures); one whose files cannot be used keeps its
    context and is logged (`tls_reload_rejected`), the others take their new files."""
    reloaded, refused = [], []
    for name, endpoint in endpoints.items():
        try:
            endpoint.reload()
        except TlsError as exc:
            refused.append(f"{name}: {exc}")
            logs.warning("tls_reload_rejected", endpoint=name, reason=str(exc))
            continue
        reloaded.append(name)
    if reloaded:
        logs.event("tls_reloaded", endpoints=reloaded)
    return not refused, "; ".join(refused) or f"reloaded: {', '.join(reloaded) or 'no TLS endpoint'}"


def failure_reason(exc: BaseException) -> str:
    """One line for why a handshake failed (trio wraps the ssl error it met)."""
    cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) and exc.__cause__ else exc
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {cause.verify_message}"
    if isinstance(cause, ssl.SSLError) and cause.reason:
        return _REASONS.get(cause.reason, cause.reason.lower().replace("_", " "))
    if isinstance(cause, OSError) and cause.strerror:
        return f"connection lost during the handshake ({cause.strerror})"
    return "connection lost during the handshake"


def peer_subject(stream: object) -> str | None:
    """The common name of the certificate the peer presented and the CA vouched for; None
    without TLS or without a client certificate."""
    if not isinstance(stream, trio.SSLStream):
        return None
    certificate = stream.getpeercert()
    for rdn in (certificate or {}).get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return value
    return None
