"""A request the format checks refuse says which field failed which check: in the journal, in
the `txn` log line, and (for a 30) in field 44 of the answer, which `cardswitch terminal` prints.
Never the field's value: it may be card data."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_bank, read_events, serve_switch, start_issuer, write_config
from emulators.cli.terminal import show
from emulators.terminal import open_terminal
from switch.core.messages import MANDATORY, check_request
from switch.service import Switch
from switch.wire.dialect import load_dialect
from switch.wire.message import Message

APPROVE = "4761730000000011"


# The default dialect's field 4 is fixed n12: 11 digits cannot be framed there. A dialect with a
# variable field 4 can carry them; "narrow" also has room for only 12 characters in field 44.
LENIENT = """extends = "iso87-binary"
[fields]
4 = { data_enc = "ascii", len_enc = "ascii", len_type = 2, max_len = 12, desc = "Amount, Transaction" }
"""
NARROW = LENIENT + """44 = { data_enc = "ascii", len_enc = "ascii", len_type = 2, max_len = 12, desc = "Additional Response Data" }
"""


async def start_switch(nursery, tmp_path) -> tuple[Switch, dict[str, int]]:
    (tmp_path / "lenient.toml").write_text(LENIENT)
    (tmp_path / "narrow.toml").write_text(NARROW)
    issuer_port = await start_issuer(nursery, make_bank({"pan": APPROVE}))
    config = write_config(tmp_path / "switch.toml", issuers=[{"name": "bank", "port": issuer_port}],
                          routes=[{"prefix": "4", "issuer": "bank"}],
                          listeners=[{"name": "lenient", "port": 0, "dialect": str(tmp_path / "lenient.toml")},
                                     {"name": "narrow", "port": 0, "dialect": str(tmp_path / "narrow.toml")}])
    switch, ports = await serve_switch(nursery, config, tmp_path / "data")
    return switch, ports


async def test_an_amount_of_11_digits_gets_30_naming_field_4_and_the_check(nursery, tmp_path, log_file):
    switch, ports = await start_switch(nursery, tmp_path)
    dialect = load_dialect(str(tmp_path / "lenient.toml"))
    async with open_terminal("127.0.0.1", ports["lenient"], dialect=dialect) as terminal:
        request = terminal.card_request("0200", pan=APPROVE, amount=1234, expiry="3012")
        request["4"] = "00000001234"
        response = await terminal.send(request)
    assert (response.mti, response["39"], response["44"]) == ("0210", "30", "F4: 12 digits expected")

    await switch.journal.flush()
    rows = switch.journal.read("SELECT rc, state, reason FROM transactions WHERE stan = ?", (request["11"],))
    assert [tuple(row) for row in rows] == [("30", "rejected", "field 4: 12 digits expected")]

    lines = [e for e in read_events(log_file) if e["event"] == "txn" and e["stan"] == request["11"]]
    assert [(e["rc"], e["reason"]) for e in lines] == [("30", "field 4: 12 digits expected")]

    printed = show(response, dialect)  # what `cardswitch terminal` prints
    assert "30  (format error: F4: 12 digits expected)" in printed

    # A dialect with less room in field 44 gets the reason cut to it, still a 30.
    narrow = load_dialect(str(tmp_path / "narrow.toml"))
    async with open_terminal("127.0.0.1", ports["narrow"], dialect=narrow) as terminal:
        request = terminal.card_request("0200", pan=APPROVE, amount=1234, expiry="3012")
        request["4"] = "00000001234"
        response = await terminal.send(request)
    assert (response["39"], response["44"]) == ("30", "F4: 12 digit")


async def test_the_txn_line_of_an_answered_request_has_no_reason(nursery, tmp_path, log_file):
    _, ports = await start_switch(nursery, tmp_path)
    async with open_terminal("127.0.0.1", ports["lenient"], dialect=load_dialect(str(tmp_path / "lenient.toml"))) \
            as terminal:
        response = await terminal.purchase(pan=APPROVE, amount=100, expiry="3012")
    assert response["39"] == "00" and "44" not in response
    line = next(e for e in read_events(log_file) if e["event"] == "txn" and e["stan"] == response["11"])
    assert line["reason"] is None


def test_reasons_name_the_field_and_the_check():
    base = {"2": APPROVE, "3": "000000", "4": "000000001234", "7": "1201120000", "11": "000001",
            "14": "3012", "41": "T0000001", "49": "978"}
    cases = [
        (Message("0600", dict(base)), "12", "MTI 0600: not supported"),
        (Message("0500", dict(base)), "30", "field 15: missing (mandatory in 0500)"),
        (Message("0200", {f: v for f, v in base.items() if f != "41"}), "30",
         "field 41: missing (mandatory in 0200)"),
        (Message("0200", {**base, "3": "990000"}), "12", "field 3: processing code 99 not supported"),
        (Message("0200", {**base, "2": "4761"}), "30", "field 2: 12-19 digits expected"),
        (Message("0200", {f: v for f, v in base.items() if f != "14"}), "30",
         "field 14: missing (mandatory without field 35)"),
    ]
    for request, code, reason in cases:
        rejection = check_request(request)
        assert rejection is not None and (rejection.code, rejection.reason) == (code, reason)
        assert len(rejection.brief) <= 25  # ISO 8583:1987 field 44 is an..25
    assert check_request(Message("0200", base)) is None


_DIGIT_RUN = re.compile(r"\d{6,}")
_values = st.one_of(st.text(alphabet="0123456789", min_size=0, max_size=45),
                    st.text(alphabet="0123456789=DF ", min_size=0, max_size=40))
_fields = st.dictionaries(st.sampled_from(["2", "3", "4", "7", "11", "14", "35", "41", "49", "70", "90"]),
                          _values, max_size=11)


@settings(max_examples=400, deadline=None)
@given(mti=st.sampled_from([*MANDATORY, "0201", "0421", "0500", "0110", "9999"]), fields=_fields)
def test_a_reason_never_carries_a_value_of_six_digits_or_more(mti, fields):
    rejection = check_request(Message(mti, fields))
    if rejection is None:
        return
    for value in fields.values():
        for run in _DIGIT_RUN.findall(value):
            windows = {run[i:i + 6] for i in range(len(run) - 5)}
            assert not any(w in rejection.reason or w in rejection.brief for w in windows), (value, rejection)
