"""Card data at rest: a keyed hash of the PAN for matching, and sealed payloads for SAF.

The journal must be able to match a reversal or a duplicate to its original by card, and the
store-and-forward queue must be able to send an advice carrying the PAN after a restart, yet no
file under the data directory may hold a PAN in clear. So PANs are stored as HMAC-SHA256 under a
data key, and the few messages that must be re-sent are sealed with AES-GCM under another key.
Both keys are derived (HKDF) from one 32-byte secret kept in `data_dir/data.key` (mode 0600),
created on first use, or given in the CARDSWITCH_DATA_KEY environment variable (64 hex digits).
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import threading
import weakref
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from switch.errors import ConfigError

KEY_FILE = "data.key"
KEY_ENV = "CARDSWITCH_DATA_KEY"
NONCE_SIZE = 12


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"cardswitch " + purpose).derive(secret)


# What a sealed payload holds: its fields' numbers and values joined by NUL ("2\x004761...\x00
# 4\x00000000001500..."). Every request that may reach an issuer seals its reversal into its
# journal row, and json's encoder took 47k instructions for a reversal's 18 fields where the join
# takes 16k (docs/performance.md). A value holding a NUL itself (a terminal's text may) would
# make that ambiguous, so such fields are sealed as compact JSON, which starts with "{" where
# the joined form starts with a field number: `open` reads both, and what was sealed before.
_SEPARATOR = "\x00"
_ENCODER = json.JSONEncoder(separators=(",", ":"))
_flattened = itertools.chain.from_iterable


def _packed(fields: dict[str, str]) -> str:
    try:
        text = _SEPARATOR.join(_flattened(fields.items()))
    except TypeError:  # a value that is not text: JSON keeps its type, as it always did
        return _ENCODER.encode(fields)
    if text.count(_SEPARATOR) != 2 * len(fields) - 1 or text.startswith("{"):
        return _ENCODER.encode(fields)
    return text


def _unpacked(text: str) -> dict[str, str]:
    if text.startswith("{"):
        return json.loads(text)
    parts = text.split(_SEPARATOR)
    return dict(zip(parts[::2], parts[1::2]))


class Nonces:
    """AES-GCM nonces that never repeat under one key, without a system call each: a random
    8-byte field fixed per process (and drawn anew in a forked child, or after 2^32 nonces) and
    a 4-byte counter, NIST SP 800-38D's deterministic construction. Every request that may reach
    an issuer seals its reversal, so the `getrandom` per seal this replaces was one system call
    a transaction. Two processes (workers, instances on one journal, restarts) repeat a nonce
    only if they draw the same 64-bit field: about 2^-64 a pair. The field and its counter are
    one pair, replaced whole under a lock, so two threads at the counter's end cannot both
    start a new field's count and take the same nonce."""

    COUNTER_LIMIT = 2 ** 32

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fresh_field()
        _LIVE.add(self)

    def _fresh_field(self) -> None:
        self._current = (secrets.token_bytes(NONCE_SIZE - 4), itertools.count())

    def next(self) -> bytes:
        field, counter = self._current
        invocation = next(counter)
        if invocation >= self.COUNTER_LIMIT:
            with self._lock:
                if self._current[0] == field:
                    self._fresh_field()
                field, counter = self._current
                invocation = next(counter)
        return field + invocation.to_bytes(4, "big")


# One fork hook for every Nonces alive: a forked child must not go on with its parent's count.
_LIVE: weakref.WeakSet[Nonces] = weakref.WeakSet()


def _fresh_fields_in_child() -> None:
    for nonces in list(_LIVE):
        nonces._fresh_field()


os.register_at_fork(after_in_child=_fresh_fields_in_child)


class Vault:
    def __init__(self, secret: bytes):
        # cryptography's HMAC, whose copy, update and finalize are each one call into its native
        # code (hmac's wrapper is Python around OpenSSL's): 18k -> 12k instructions a PAN hash
        self._hash = crypto_hmac.HMAC(_derive(secret, b"pan hash"), hashes.SHA256())
        self._aead = AESGCM(_derive(secret, b"seal"))
        self._nonces = Nonces()
        self._check = _derive(secret, b"check value").hex()[:16]

    def __repr__(self) -> str:
        return "Vault(<keys hidden>)"

    def check_value(self) -> str:
        """Names the data key without revealing it: instances sharing a journal must have the
        same key, or their PAN hashes and sealed reversals would not match (switch.instances)."""
        return self._check

    def pan_hash(self, pan: str) -> str:
        keyed = self._hash.copy()  # the keyed state is computed once, not per PAN
        keyed.update(pan.encode())
        return keyed.finalize().hex()

    def seal(self, fields: dict[str, str]) -> bytes:
        nonce = self._nonces.next()
        return nonce + self._aead.encrypt(nonce, _packed(fields).encode(), None)

    def open(self, sealed: bytes) -> dict[str, str]:
        return _unpacked(self._aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], None).decode())


def open_vault(data_dir: Path) -> Vault:
    """The data directory's vault, creating its key on first use."""
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        try:
            secret = bytes.fromhex(from_env)
        except ValueError:
            secret = b""
        if len(secret) != 32:
            raise ConfigError(KEY_ENV, "(environment)", "64 hex digits (a 32-byte key)")
        return Vault(secret)
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(32))
    secret = path.read_bytes()
    if len(secret) != 32:
        raise ConfigError(path, "(file)", "a 32-byte data key")
    return Vault(secret)
