"""The transaction's log line, written as JSON text by hand for its cost, reads back as the
object `logs.event` writes for the same values: same keys in the same order, same values, times
to three decimals, any text a terminal may send (quotes, control characters, non-ASCII) escaped."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from switch import logs
from switch.core.codes import RC, meaning
from switch.core.states import State
from switch.core.txn import Txn
from switch.txnline import txn_line
from switch.wire.masking import mask_pan, mask_pan_like

texts = st.text(max_size=30)
maybe_texts = st.none() | texts
times = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@st.composite
def transactions(draw) -> Txn:
    txn = Txn(trace=draw(st.integers(1, 2 ** 62)), mti="0200", tid=draw(texts), stan=draw(texts),
              transmitted="1201000000", rrn=None, amount=0, pan_hash=None, created=0.0, seen=0.0)
    txn.issuer = draw(maybe_texts)
    txn.rc = draw(st.none() | st.sampled_from(list(RC)) | texts)
    txn.state = draw(st.sampled_from(list(State)))
    txn.issuer_ms = draw(st.none() | times)
    return txn


@settings(max_examples=300, deadline=None)
@given(listener=texts, mti=texts, txn=transactions(), pan=st.none() | st.text("0123456789", min_size=1, max_size=19),
       latency_ms=times, reason=maybe_texts, risk=maybe_texts, now=st.floats(1e9, 4e9))
def test_the_line_reads_back_as_the_event_would(listener, mti, txn, pan, latency_ms, reason, risk, now):
    expected = json.loads(logs._ENCODER.encode({
        "ts": round(now, 3), "event": "txn", "listener": listener, "trace": txn.trace, "mti": mask_pan_like(mti),
        "pan": mask_pan(pan) if pan else None, "stan": mask_pan_like(txn.stan), "tid": mask_pan_like(txn.tid),
        "issuer": txn.issuer, "rc": txn.rc, "meaning": meaning(txn.rc), "state": txn.state,
        "latency_ms": round(latency_ms, 3),
        "issuer_ms": None if txn.issuer_ms is None else round(txn.issuer_ms, 3), "reason": reason, "risk": risk}))
    line = txn_line(listener, mti, txn, pan, latency_ms, reason, risk, now)
    assert "\n" not in line
    got = json.loads(line)
    assert list(got) == list(expected)
    assert got == expected


def test_a_card_number_is_masked_wherever_it_comes():
    txn = Txn(trace=7, mti="0200", tid="4761739001010119", stan="4761739001010119", transmitted="1201000000",
              rrn=None, amount=0, pan_hash=None, created=0.0, seen=0.0)
    line = txn_line("acq", "4761739001010119", txn, "4761739001010119", 1.0, None, None, 1.8e9)
    assert "4761739001010119" not in line
    assert json.loads(line)["pan"] == "476173******0119"


def test_a_value_of_another_type_is_written_as_its_text():
    """What `logs.event` does with its `default=str`: the line never fails its transaction."""
    txn = Txn(trace=7, mti="0200", tid="T1", stan="000001", transmitted="1201000000", rrn=None, amount=0,
              pan_hash=None, created=0.0, seen=0.0)
    txn.issuer = 42
    line = txn_line("acq", "0200", txn, None, 1.0, None, None, 1.8e9)
    assert json.loads(line)["issuer"] == "42"
