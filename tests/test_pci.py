"""No full PAN, track data, PIN block, CVV2 or ICC data in any log line or error text."""

from __future__ import annotations

import json
import sqlite3

import trio

from conftest import log_text
from emulators.terminal import open_terminal
from switch.core.messages import respond, retained_response
from switch.journal import DB_FILE
from switch.records import stored_response
from switch.wire.dialect import MessageDecodeError, load_dialect
from switch.wire.masking import masked_value
from switch.wire.message import Message

PAN = "4761730000000011"
TRACK2 = f"{PAN}=30121011234599999"
PIN_BLOCK = "8F3A5C7E91B2D4F6"
CVV2 = "731"
ICC = "9F2608C1D2E3F4A5B6C7D8"
SECRETS = (PAN, TRACK2, "30121011234599999", PIN_BLOCK, ICC, "9292" + CVV2)


async def test_logs_carry_no_card_secrets(demo, log_file):
    extra = {"48": "0203ABC9203" + CVV2, "52": PIN_BLOCK, "55": ICC}
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        await terminal.purchase(pan=PAN, amount=100, expiry="3012", extra=extra)
        await terminal.purchase(track2=TRACK2, amount=100, extra=extra)
        await terminal.purchase(pan="6011000000000020", amount=100, expiry="3012", extra=extra)  # 91
        await terminal.purchase(pan="3700000000000007", amount=100, expiry="3012", extra=extra)  # 15
        bad = terminal.card_request("0200", pan=PAN, amount=100, expiry="3012", extra=extra)
        bad["7"] = "NOTADATE!!"  # fails format checks: 30
        await terminal.send(bad)
    # An undecodable message whose PAN was readable before the failure.
    broken = load_dialect().encode(Message("0200", {"2": PAN, "3": "000000", "11": "000009", "49": "978"}))
    async with await trio.open_tcp_stream("127.0.0.1", demo.ports["terminals"]) as stream:
        await stream.send_all(load_dialect().framing.frame(broken[:-1]))
        await stream.receive_some(1000)
    text = log_text(log_file)
    assert '"event":"txn"' in text and "476173******0011" in text
    for secret in SECRETS:
        assert secret not in text, secret


async def test_advices_carry_no_card_secrets_into_logs_or_the_saf_queue(demo, log_file, tmp_path):
    """A terminal's advices may arrive with card-present data; none of it is logged, and the
    sealed SAF payload the issuer will get holds the PAN only."""
    extra = {"48": "0203ABC9203" + CVV2, "52": PIN_BLOCK, "55": ICC}
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        await terminal.send(terminal.card_request("0220", track2=TRACK2, amount=100, extra=extra))
        reversal = terminal.reversal_of(terminal.card_request("0200", pan=PAN, amount=100, expiry="3012"), "0420")
        reversal.fields.update(extra, **{"35": TRACK2})
        await terminal.send(reversal)  # original unknown: advised to the issuer as it came
    await demo.switch.journal.flush()
    with sqlite3.connect(tmp_path / "data" / DB_FILE) as connection:
        payloads = [demo.switch.vault.open(row[0]) for row in connection.execute("SELECT payload FROM saf")]
    assert len(payloads) == 2
    for fields in payloads:
        assert fields["2"] == PAN and fields["48"] == "0203ABC" and not {"35", "52", "55"} & set(fields)
        for secret in SECRETS[1:]:
            assert secret not in json.dumps(fields), secret
    text = log_text(log_file)
    assert '"mti":"0220"' in text and '"mti":"0420"' in text
    for secret in SECRETS:
        assert secret not in text, secret


def test_error_texts_and_reprs_carry_no_card_secrets():
    message = Message("0200", {"2": PAN, "35": TRACK2, "52": PIN_BLOCK, "55": ICC, "48": "9203" + CVV2})
    shown = repr(message)
    for secret in SECRETS:
        assert secret not in shown
    data = load_dialect().encode(message)
    try:
        load_dialect().decode(data[:-3])
    except MessageDecodeError as exc:
        for secret in SECRETS:
            assert secret not in str(exc)
            assert all(secret not in str(arg) for arg in exc.args)
    else:
        raise AssertionError("a truncated message must not decode")


def test_a_retransmission_gets_the_issuers_icc_data_again_but_the_journal_never_holds_it():
    request = Message("0200", {"2": PAN, "3": "000000", "4": "000000001000", "11": "000123", "41": "T0000001",
                               "35": TRACK2, "52": PIN_BLOCK, "55": ICC})
    issuer = Message("0210", {"38": "A1B2C3", "39": "00", "55": "910A" + "11" * 10, "48": "9203" + CVV2,
                              "34": PAN, "11": "999999"})
    first = respond(request, "00", issuer)
    again = respond(request, "00", Message("0210", retained_response(first)))  # a retransmission, from memory
    assert again == first and again["55"] == issuer["55"]
    assert "34" not in first and "35" not in first and "52" not in first  # card data is never returned
    stored = stored_response(first.mti, retained_response(first))
    assert "38" in json.loads(stored)["fields"]
    for secret in (*SECRETS, issuer["55"], "9203" + CVV2):
        assert secret not in stored, secret
    assert masked_value("34", PAN) == "476173******0011"


async def test_a_pan_in_any_field_reaches_neither_journal_nor_log(demo, log_file, tmp_path):
    """A misaligned frame puts card data where no one expects it: here a full PAN in the merchant
    id (42) and another's first 12 digits in the RRN (37). The journal row is written before
    validation looks at the request; neither it nor any log line holds the full PAN."""
    amex = "378282246310005"  # 15 digits, Luhn-valid: fits field 42 whole
    async with open_terminal("127.0.0.1", demo.ports["terminals"]) as terminal:
        approved = terminal.card_request("0200", pan=PAN, amount=100, expiry="3012")
        approved.fields.update({"37": PAN[:12], "42": amex})
        misaligned = terminal.card_request("0200", pan=PAN, amount=100, expiry="3012")
        misaligned.fields.update({"37": TRACK2[4:16], "42": amex, "7": TRACK2[16:26]})  # 7 fails: 30
        answers = [await terminal.send(approved), await terminal.send(misaligned)]
    assert [a["39"] for a in answers] == ["00", "30"]
    await demo.switch.journal.flush()
    with sqlite3.connect(tmp_path / "data" / DB_FILE) as connection:
        rows = connection.execute("SELECT mid, rrn, transmitted FROM transactions ORDER BY trace").fetchall()
    assert rows[0][0] == "378282*****0005" and len(rows) == 2
    stored = b"".join(path.read_bytes() for path in (tmp_path / "data").iterdir() if path.is_file())
    text = log_text(log_file)
    assert '"event":"txn"' in text
    for secret in (amex, PAN):
        assert secret.encode() not in stored, secret
        assert secret not in text, secret
