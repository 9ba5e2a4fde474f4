"""A request's journal row, written whole when it first matters (switch.records): the same row
whichever way the request went, and a pending row with its reversal from the moment it may be at
an issuer, which is what recovery after a crash goes by."""

from __future__ import annotations

import json
import time

import trio
from hypothesis import given, strategies as st

from conftest import journal_rows
from switch.core.states import State
from switch.core.txn import Txn
from switch.journal import Journal
from switch.records import NOT_STORED, TxnRecords, loaded_response, stored_response
from switch.wire.message import Message

PAN = "4761739001010010"
REQUEST = Message("0200", {"2": PAN, "3": "000000", "4": "000000001500", "11": "000123", "7": "1201120000",
                           "19": "840", "32": "100001", "41": "TERM0001", "42": "MERCHANT0000001", "49": "840"})
OPENED_COLUMNS = ("listener", "mti", "processing_code", "amount", "currency", "tid", "mid", "stan", "transmitted",
                  "pan_masked", "pan_hash", "country", "instance", "acquirer", "business_date")


def txn(trace: int) -> Txn:
    return Txn(trace=trace, mti="0200", tid="TERM0001", stan="000123", transmitted="1201120000", rrn=None,
               amount=1500, pan_hash="ab" * 16, created=time.time(), seen=trio.current_time())


async def test_each_way_a_request_goes_leaves_one_complete_row(tmp_path):
    journal = Journal(tmp_path)
    records = TxnRecords(journal, instance=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        answered_here, forwarded, claimed = txn(1), txn(2), txn(3)
        for request in (answered_here, forwarded, claimed):
            records.open(request, REQUEST, "terminals", PAN, "100001", "2026-12-01")
        records.write_opened(claimed)  # a shared journal's claim: the row must be there first
        await journal.durable()
        assert [row["trace"] for row in journal_rows(tmp_path)] == [3], "only the claimed request is written yet"

        for request in (forwarded, claimed):
            request.issuer, request.sent_as = "bank_a", "0200000123120112000000000100001"
            records.prepared(request, b"sealed reversal")
        await journal.durable()
        pending = journal_rows(tmp_path, "SELECT * FROM transactions WHERE state = 'pending' ORDER BY trace")
        assert [(row["trace"], row["reversal"], row["issuer"]) for row in pending] == [
            (2, b"sealed reversal", "bank_a"), (3, b"sealed reversal", "bank_a")]

        for request, rc, state in ((answered_here, "15", State.DECLINED), (forwarded, "00", State.APPROVED),
                                   (claimed, "00", State.APPROVED)):
            request.rc, request.state = rc, state
            records.close(request, 1.5, None, None, None, None, "2026-12-01", "2026-12-01")
        await journal.durable()
        nursery.cancel_scope.cancel()

    rows = journal_rows(tmp_path)
    assert [(row["trace"], row["rc"], row["state"], row["reversal"]) for row in rows] == [
        (1, "15", "declined", None), (2, "00", "approved", None), (3, "00", "approved", None)]
    opened = [tuple(row[column] for column in OPENED_COLUMNS) for row in rows]
    assert opened[0] == opened[1] == opened[2]
    assert opened[0][OPENED_COLUMNS.index("pan_masked")] == "476173******0010"
    assert opened[0][OPENED_COLUMNS.index("instance")] == 3
    assert all(PAN not in str(tuple(row)) for row in rows)


@given(st.text(max_size=4), st.dictionaries(st.sampled_from(["38", "39", "44", "54", "55", "64", "2", "15"]) | st.text(max_size=3),
                                            st.text(max_size=20), max_size=8))
def test_a_stored_response_is_the_json_the_encoder_writes_and_reads_back(mti, fields):
    """Written as text on every transaction, read by json (a retransmission after a restart)."""
    kept = {field: value for field, value in fields.items() if field not in NOT_STORED}
    text = stored_response(mti, fields)
    assert text == json.dumps({"mti": mti, "fields": kept}, separators=(",", ":"))
    assert loaded_response(text) == kept


def test_a_stored_response_value_that_is_not_text_is_written_as_its_text():
    assert loaded_response(stored_response("0210", {"39": "00", "38": 123456})) == {"39": "00", "38": "123456"}
