"""The vault's sealed payloads: AES-GCM under the data key, nonces that never repeat under it."""

from __future__ import annotations

import os
import threading

import json

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given, strategies as st

from switch.vault import NONCE_SIZE, Nonces, Vault

SECRET = bytes(range(32))


def test_a_sealed_reversal_opens_again_and_hides_its_fields():
    vault = Vault(SECRET)
    fields = {"2": "4761730000000011", "4": "000000001500", "11": "000001"}
    sealed = vault.seal(fields)
    assert b"4761730000000011" not in sealed
    assert vault.open(sealed) == fields
    with pytest.raises(InvalidTag):
        Vault(bytes(32)).open(sealed)  # another data key


def test_pan_hashes_are_those_journals_already_hold():
    """HMAC-SHA256 under the derived key, as every earlier version wrote it (the values below
    came from the hmac module's implementation): duplicate detection, risk counts and
    reconciliation find a card's old rows by it."""
    vault = Vault(SECRET)
    assert vault.pan_hash("4761730000000011") == "2910654729920dccfb79eae3393064d058f34ff75af2e4da0077fca6ccb61895"
    assert vault.pan_hash("5500000000000004") == "30d421719b12a37018ff04c9d4568c2fd4923bd2e3daa79eef9f5290fa9abbdf"
    assert vault.pan_hash("4761730000000011") == vault.pan_hash("4761730000000011")  # the keyed state is not used up


@given(st.dictionaries(st.text(max_size=4), st.text(max_size=30), max_size=25))
def test_any_fields_open_as_they_were_sealed(fields):
    """Whatever a terminal put in them: NULs (the separator of the joined form), a "{" first,
    non-ASCII, empty keys or values."""
    vault = Vault(SECRET)
    assert vault.open(vault.seal(fields)) == fields


def test_a_payload_sealed_as_json_before_the_joined_form_still_opens():
    """Rows and SAF items written by an earlier version: recovery and SAF must still read them."""
    vault = Vault(SECRET)
    fields = {"2": "4761730000000011", "4": "000000001500", "90": "0200000001120112000000000100001" + "0" * 11}
    nonce = bytes(NONCE_SIZE)
    sealed = nonce + vault._aead.encrypt(nonce, json.dumps(fields, separators=(",", ":")).encode(), None)
    assert vault.open(sealed) == fields


def test_nonces_never_repeat_and_a_wrapped_counter_draws_a_new_field():
    nonces = Nonces()
    nonces.COUNTER_LIMIT = 4
    drawn = [nonces.next() for _ in range(12)]
    assert len(set(drawn)) == 12 and all(len(nonce) == NONCE_SIZE for nonce in drawn)
    assert len({nonce[:-4] for nonce in drawn}) == 3  # a fixed field per 4 invocations
    assert [int.from_bytes(nonce[-4:], "big") for nonce in drawn[:4]] == [0, 1, 2, 3]


def test_every_seal_has_its_own_nonce():
    vault = Vault(SECRET)
    assert len({vault.seal({"11": "000001"})[:NONCE_SIZE] for _ in range(1000)}) == 1000


def test_a_forked_child_draws_its_own_fixed_field():
    """A worker forked from a process that already sealed must not reuse its nonces."""
    nonces = Nonces()
    parent = nonces.next()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write, nonces.next())
        os._exit(0)
    os.close(write)
    in_child = os.read(read, NONCE_SIZE)
    os.waitpid(child, 0)
    assert len(in_child) == NONCE_SIZE and in_child[:-4] != parent[:-4]


def test_threads_at_the_counters_end_never_share_a_nonce():
    nonces = Nonces()
    nonces.COUNTER_LIMIT = 3
    drawn: list[bytes] = []

    def draw() -> None:
        drawn.extend(nonces.next() for _ in range(2000))
    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(drawn) == 8000 and len(set(drawn)) == 8000
