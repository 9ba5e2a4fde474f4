"""ISO 8583:1993 on the wire, 1987 inside: the mapping's round trips and codes, the bytes a 1993
dialect writes, and a 1987 terminal reaching a 1993 issuer (and a 1993 terminal a 1987 issuer)
through the switch over loopback TCP."""

from __future__ import annotations

import datetime
import shutil

import pytest
import trio
from hypothesis import given, strategies as st

from conftest import make_bank, read_events, serve_switch, start_issuer, until, write_config
from emulators.issuer import IssuerHostConfig, serve_issuer
from emulators.network import DEMO_DIR, start_network, terminal_pin_key
from emulators.terminal import open_terminal
from switch.capture.sanitize import Sanitizer
from switch.errors import ConfigError
from switch.service import Switch
from switch.wire import iso93
from switch.wire.dialect import MessageDecodeError, load_dialect
from switch.hsm import mac
from switch.hsm.keys import Key
from switch.wire.macs import covered, mac_field, received_mac, with_mac, with_zero_mac
from switch.wire.message import Message, response_mti

ISO93 = "iso93-binary"
APPROVE = "4761730000000011"
BANK_B_CARD, BANK_B_PIN = "5200000000000015", "9753"  # bank_b verifies PINs itself (IBM offset)
EXPIRY = "3012"


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n)


def text(n: int) -> st.SearchStrategy[str]:
    return st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ", min_size=n, max_size=n)


# Response codes the mapping carries both ways (00 as each message class writes its approval).
MAPPED_CODES = st.sampled_from(sorted(set(iso93.RC_TO_ACTION)))
ENTRY_MODES = st.builds(lambda mode, pin: mode + pin, st.sampled_from(["01", "05", "07", "90", "91"]),
                        st.sampled_from(["0", "1", "2", "8"]))


@st.composite
def card_fields(draw) -> dict[str, str]:
    """What a terminal and the switch put in a card request (DESIGN.md's field conventions)."""
    fields = {"2": draw(st.text("0123456789", min_size=12, max_size=19)), "3": draw(st.sampled_from(
        ["000000", "010000", "200000", "310000"])), "4": draw(digits(12)), "7": draw(digits(10)),
        "11": draw(digits(6)), "12": draw(digits(6)), "13": draw(digits(4)), "41": draw(text(8)),
        "42": draw(text(15)), "49": draw(digits(3)), "37": draw(text(12)), "22": draw(ENTRY_MODES)}
    optional = {"14": digits(4), "18": digits(4), "19": digits(3), "32": st.text("0123456789", min_size=1, max_size=11),
                "35": st.just("4761730000000011=30121011234500000"), "43": text(40), "48": st.just("9203123"),
                "52": st.text("0123456789ABCDEF", min_size=16, max_size=16),
                "55": st.just("9F2608AABBCCDDEEFF0011"), "64": st.text("0123456789ABCDEF", min_size=16, max_size=16)}
    for field, strategy in optional.items():
        if draw(st.booleans()):
            fields[field] = draw(strategy)
    return fields


@st.composite
def messages_1987(draw) -> Message:
    """1987 messages of every type the switch handles, with the fields it uses."""
    kind = draw(st.sampled_from(["card", "reversal", "network", "reconciliation"]))
    if kind == "card":
        mti = draw(st.sampled_from(["0100", "0101", "0120", "0200", "0201", "0220", "0221"]))
        fields = draw(card_fields())
        if mti[2] == "2" or draw(st.booleans()):
            fields["39"] = draw(MAPPED_CODES)
    elif kind == "reversal":
        mti = draw(st.sampled_from(["0400", "0401", "0420", "0421"]))
        fields = draw(card_fields())
        acquirer = draw(st.text("0123456789", min_size=11, max_size=11))
        fields["90"] = draw(st.sampled_from(["0100", "0200"])) + draw(digits(16)) + acquirer + "0" * 11
        if draw(st.booleans()):
            fields["95"] = draw(digits(12).filter(lambda v: int(v) > 0)) + "0" * 30
        if mti[:3] == "042" and draw(st.booleans()):
            fields["39"] = "68"
    elif kind == "network":
        mti = draw(st.sampled_from(["0800", "0820"]))
        fields = {"7": draw(digits(10)), "11": draw(digits(6)), "70": draw(st.sampled_from(sorted(iso93.NETWORK_FUNCTION)))}
        if draw(st.booleans()):
            fields["41"] = draw(text(8))
    else:
        mti = draw(st.sampled_from(["0500", "0520"]))
        fields = {"7": draw(digits(10)), "11": draw(digits(6)), "15": draw(digits(4)), "41": draw(text(8)),
                  **{f: draw(digits(10)) for f in ("74", "75", "76", "77")},
                  **{f: draw(digits(16)) for f in ("86", "87", "88", "89")}, "97": "C" + draw(digits(16))}
    mac = fields.pop("64", None)
    if mac is not None:  # where a 1987 MAC sits: 128 when the message has a secondary bitmap
        fields[mac_field(fields)] = mac
    return Message(mti, fields)


def answer_to(request: Message, code: str) -> Message:
    """The response the switch or an issuer makes: the echoed fields and 39 (38 on approval)."""
    keep = ("2", "3", "4", "7", "11", "12", "13", "15", "32", "37", "41", "42", "49", "70", "74", "86", "97")
    fields = {f: v for f, v in request.fields.items() if f in keep}
    fields["39"] = code
    if code == "00" and request.mti[1] in "12":
        fields["38"] = "A1B2C3"
    return Message(response_mti(request.mti), fields)


@given(messages_1987())
def test_requests_survive_1987_to_1993_to_the_wire_and_back(message):
    dialect = load_dialect(ISO93)
    assert dialect.decode(dialect.encode(message)) == message


@given(messages_1987(), st.one_of(st.just("00"), MAPPED_CODES))
def test_responses_survive_1987_to_1993_to_the_wire_and_back(request, code):
    """Except the approvals of authorisations (08, 10, 11) on other messages: 1993 has no such
    answer to a reversal or a sign-on, and reads one as no approval (96)."""
    dialect = load_dialect(ISO93)
    response = answer_to(request, code)
    back = dialect.decode(dialect.encode(response))
    if code in ("08", "10", "11") and request.mti[1] not in "12":
        assert back["39"] == "96"
    else:
        assert back == response


def test_every_response_code_has_its_own_action_code_and_back():
    assert len(set(iso93.RC_TO_ACTION.values())) == len(iso93.RC_TO_ACTION)
    for code, action in iso93.RC_TO_ACTION.items():
        assert len(action) == 3 and action.isdigit()
        assert iso93.from_1993(iso93.to_1993(Message("0210", {"39": code}))).fields["39"] == code


APPROVALS = {"1110": "0xx", "1210": "0xx", "1130": "0xx 900 901", "1230": "0xx 900 901",
             "1430": "400 000 900 901", "1510": "500 000", "1814": "800 000"}


@given(st.sampled_from(sorted(APPROVALS)), st.one_of(st.text(min_size=0, max_size=3), st.from_regex(r"\A[0-9]{3}\Z")))
def test_no_action_code_reads_as_an_approval_unless_it_accepts_that_kind_of_message(mti, action):
    """0xx accepts authorisations and purchases, 400 reversals, 500 reconciliations, 800 network
    management, 900/901 advices (a 1430 without reason 4000 answers an advice); nothing else
    approves: 900 on a 1210 is no approval."""
    code = iso93.from_1993(Message(mti, {"39": action})).fields["39"]
    if code in ("00", "10", "08", "11"):
        allowed = APPROVALS[mti].split()
        assert action in allowed or ("0xx" in allowed and len(action) == 3 and action[0] == "0"
                                     and action.isascii() and action.isdigit()), (mti, action)


@pytest.mark.parametrize("mti, action", [("1210", "900"), ("1110", "400"), ("1110", "800"), ("1210", "300"),
                                         ("1430", "116"), ("1814", "116")])
def test_an_action_code_of_another_kind_of_message_is_no_approval(mti, action):
    assert iso93.from_1993(Message(mti, {"39": action})).fields["39"] != "00"


@given(st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2).filter(lambda c: c != "00"))
def test_no_refusal_becomes_an_approval_on_the_way_out(code):
    """A response code without an entry is a decline in 1993 (100), never an approval."""
    action = iso93.to_1993(Message("0210", {"39": code})).fields["39"]
    assert action[0] != "0" or code in ("08", "10", "11")


def test_an_approval_is_written_as_its_message_class_writes_it():
    for mti, action in {"0110": "000", "0210": "000", "0410": "400", "0430": "400", "0510": "500",
                        "0810": "800", "0230": "000"}.items():
        assert iso93.to_1993(Message(mti, {"39": "00", "70": "301"})).fields["39"] == action, mti


def test_years_are_the_nearest_to_today():
    new_year = datetime.date(2027, 1, 1)
    assert iso93.to_1993(Message("0200", {"12": "235959", "13": "1231"}), new_year).fields["12"] == "261231235959"
    assert iso93.to_1993(Message("0200", {"12": "000001", "13": "0101"}), new_year).fields["12"] == "270101000001"
    assert iso93.to_1993(Message("0510", {"15": "1230"}), datetime.date(2026, 1, 2)).fields["15"] == "251230"


# -- the wire ----------------------------------------------------------------------------

def test_a_declined_authorisation_goes_out_as_1110_with_a_three_digit_action_code():
    dialect = load_dialect(ISO93)
    payload = dialect.encode(Message("0110", {"11": "000001", "39": "51", "41": "T0000001"}))
    assert payload.startswith(b"1110")
    assert payload.endswith(b"000001" + b"100" + b"116" + b"T0000001")  # 11, 24, 39, 41
    assert dialect.decode_wire(payload).fields == {"11": "000001", "24": "100", "39": "116", "41": "T0000001"}


def test_a_purchase_carries_1993_date_time_pos_data_code_and_business_code():
    dialect = load_dialect(ISO93)
    purchase = Message("0200", {"2": APPROVE, "3": "000000", "4": "000000001234", "7": "1201120000",
                                "11": "000007", "12": "130000", "13": "1201", "18": "5411", "22": "051",
                                "41": "T0000001", "49": "978", "52": "0123456789ABCDEF"})
    wire = dialect.decode_wire(dialect.encode(purchase))
    assert wire.mti == "1200"
    assert wire.fields["12"][2:] == "1201130000" and len(wire.fields["12"]) == 12
    assert wire.fields["22"] == "510101513001"  # chip read, PIN capable, PIN verified online
    assert (wire.fields["24"], wire.fields["26"]) == ("200", "5411")
    assert "13" not in wire.fields and "18" not in wire.fields


def test_reversals_name_their_original_in_field_56_and_say_why_in_25():
    dialect = load_dialect(ISO93)
    original = "0200" + "000007" + "1201120000" + "00000100001" + "0" * 11
    request = Message("0400", {"2": APPROVE, "4": "000000001234", "11": "000008", "90": original,
                               "95": "000000000500" + "0" * 30})
    wire = dialect.decode_wire(dialect.encode(request))
    assert wire.mti == "1420"
    assert (wire.fields["24"], wire.fields["25"]) == ("401", "4000")  # partial, customer cancellation
    assert wire.fields["56"] == "1200" + "000007" + "26" + "1201120000" + "06" + "100001"
    assert (wire.fields["4"], wire.fields["30"]) == ("000000000500", "000000001234" + "0" * 12)
    advice = dialect.decode_wire(dialect.encode(Message("0420", {"11": "000009", "39": "68", "90": original})))
    assert (advice.mti, advice.fields["25"], "39" in advice.fields) == ("1420", "4006", False)


def test_network_management_is_1804_with_a_function_code_and_1814_accepted_with_800():
    dialect = load_dialect(ISO93)
    for code, function in iso93.NETWORK_FUNCTION.items():
        wire = dialect.decode_wire(dialect.encode(Message("0800", {"7": "1201120000", "11": "000001", "70": code})))
        assert (wire.mti, wire.fields["24"], "70" in wire.fields) == ("1804", function, False)
    answer = dialect.decode_wire(dialect.encode(Message("0810", {"11": "000001", "39": "00", "70": "301"})))
    assert (answer.mti, answer.fields["24"], answer.fields["39"]) == ("1814", "831", "800")


def test_the_mac_moves_to_the_field_the_other_bitmap_calls_for():
    """0800 with field 70 has a secondary bitmap in 1987 (MAC in 128); its 1804 has none (64)."""
    mac = "0123456789ABCDEF"
    wire = iso93.to_1993(Message("0800", {"11": "000001", "70": "301", "128": mac}))
    assert (wire.fields.get("64"), "128" in wire.fields) == (mac, False)
    assert iso93.from_1993(wire).fields["128"] == mac


@given(messages_1987())
def test_a_mac_made_over_the_1993_bytes_verifies_on_the_message_read_back(message):
    """As the terminal emulator and the switch MAC: a zero MAC in the 1987 message, encoded (to
    1993), MACed over the bytes sent; the receiver checks it over the bytes it read."""
    dialect, key = load_dialect(ISO93), Key.tdes(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    placeholder, field = with_zero_mac(message)
    payload = dialect.encode(placeholder)
    sent = with_mac(payload, dialect, field, mac.generate(key, covered(payload, dialect, field)).hex().upper())
    found = received_mac(dialect.decode(sent), sent, dialect)
    assert not isinstance(found, str), found
    assert mac.verify(key, found.data, bytes.fromhex(found.mac))


def test_messages_the_mapping_cannot_read_are_undecodable_never_a_traceback():
    dialect = load_dialect(ISO93)
    version_0 = load_dialect("iso87-binary").encode(Message("0200", {"11": "000001"}))
    with pytest.raises(MessageDecodeError) as refused:
        dialect.decode(version_0)
    assert refused.value.mti is None  # not answerable: no 1987 MTI to answer under
    unknown_function = dialect.encode_wire(Message("1804", {"11": "000001", "24": "899", "41": "T0000001"}))
    with pytest.raises(MessageDecodeError) as refused:
        dialect.decode(unknown_function)
    assert (refused.value.mti, refused.value.field, refused.value.echo) == ("0800", "24", {"11": "000001", "41": "T0000001"})
    bad_original = dialect.encode_wire(Message("1420", {"11": "000002", "56": "12000000"}))
    with pytest.raises(MessageDecodeError) as refused:
        dialect.decode(bad_original)
    assert (refused.value.mti, refused.value.field) == ("0420", "56")
    assert dialect.decode(dialect.encode_wire(Message("1304", {"11": "000003"}))).mti == "0304"  # answered 12


def test_a_dialect_file_with_another_iso_version_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\nextends = "iso93-binary"\niso = 2003\n')
    with pytest.raises(ConfigError, match="bad.toml.*iso.*1987 or 1993"):
        load_dialect(str(path))


def test_a_dialect_that_extends_a_1993_one_speaks_1993_unless_it_says_otherwise(tmp_path):
    framed = tmp_path / "ascii-framed.toml"
    framed.write_text('name = "ascii-framed"\nextends = "iso93-binary"\n\n[framing]\nlength = "ascii4"\n')
    dialect = load_dialect(str(framed))
    assert dialect.iso == 1993
    assert dialect.frame(Message("0810", {"11": "000001", "39": "00", "70": "301"}))[4:8] == b"1814"
    back = tmp_path / "back-to-1987.toml"
    back.write_text('name = "back"\nextends = "iso93-binary"\niso = 1987\n')
    assert load_dialect(str(back)).encode(Message("0810", {"11": "000001"})).startswith(b"0810")


def test_a_sanitized_1993_capture_keeps_its_1993_fields_and_loses_its_card_data():
    dialect = load_dialect(ISO93)
    wire = Message("1200", {"2": APPROVE, "11": "000001", "12": "261201130000", "13": "2601", "22": "C10101654140",
                            "24": "200", "35": f"{APPROVE}={EXPIRY}1011234500000", "46": "FEES", "52": "0123456789ABCDEF"})
    clean = Sanitizer(key=b"k" * 32).frame(dialect, dialect.framing.frame(dialect.encode_wire(wire)))
    assert clean is not None
    read = dialect.decode_wire(dialect.framer().feed(clean)[0].payload)
    assert {f: read.fields[f] for f in ("12", "13", "22", "24", "46")} == {
        "12": "261201130000", "13": "2601", "22": "C10101654140", "24": "200", "46": "FEES"}
    assert read.fields["2"][:6] == APPROVE[:6] and read.fields["2"] != APPROVE
    assert "35" not in read.fields and "52" not in read.fields


# -- end to end over loopback TCP --------------------------------------------------------

async def start_issuer_93(nursery, bank, name: str = "bank93") -> int:
    config = IssuerHostConfig(name=name, host="127.0.0.1", port=0, dialect=load_dialect(ISO93))
    return await nursery.start(serve_issuer, config, bank)


async def start_switch(nursery, tmp_path, issuer_port: int, *, issuer_dialect: str, listener_dialect: str,
                       **link) -> tuple[Switch, int]:
    config = write_config(tmp_path / "switch.toml",
                          issuers=[{"name": "bank", "port": issuer_port, "dialect": issuer_dialect, **link}],
                          routes=[{"prefix": "4", "issuer": "bank"}],
                          listeners=[{"name": "terminals", "port": 0, "dialect": listener_dialect}])
    switch, ports = await serve_switch(nursery, config, tmp_path / "data")
    return switch, ports["terminals"]


async def test_a_1987_terminal_through_the_switch_to_a_1993_issuer(nursery, tmp_path, log_file):
    """Approval, decline (51 as 116 and back), a reversal the issuer matches to its original,
    and the link's sign-on and echoes as 1804/1814."""
    bank = make_bank({"pan": APPROVE, "balance": 10000})
    issuer_port = await start_issuer_93(nursery, bank)
    switch, port = await start_switch(nursery, tmp_path, issuer_port, issuer_dialect=ISO93,
                                      listener_dialect="iso87-binary", sign_on=True, echo_interval_ms=50,
                                      max_missed_echoes=1)
    account = bank.accounts[APPROVE]
    async with open_terminal("127.0.0.1", port) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=2500, expiry=EXPIRY)
        approved = await terminal.send(purchase)
        assert (approved.mti, approved["39"], len(approved["38"])) == ("0210", "00", 6)
        for field in ("2", "3", "4", "7", "11", "12", "13", "37", "41", "42", "49"):
            assert approved[field] == purchase[field], field
        assert account.balance == 10000 - 2500
        declined = await terminal.purchase(pan=APPROVE, amount=999999, expiry=EXPIRY)
        assert (declined.mti, declined["39"]) == ("0210", "51")
        authorised = await terminal.authorize(pan=APPROVE, amount=100, expiry=EXPIRY)
        assert (authorised.mti, authorised["39"]) == ("0110", "00")
        reversal = await terminal.reverse(purchase)
        assert (reversal.mti, reversal["39"]) == ("0410", "00")
        assert account.balance == 10000
        assert len(bank.reversals) == 1
        await trio.sleep(0.3)  # several echo intervals: each echo answered, the link stays up
        assert switch.links["bank"].up
        echo = await terminal.echo()
        assert (echo.mti, echo["39"]) == ("0810", "00")
    events = [event["event"] for event in read_events(log_file)]
    assert "link_echo_missed" not in events and "issuer_message_undecodable" not in events
    assert "issuer_emulator_undecodable" not in events


async def test_a_purchase_the_1993_issuer_answered_too_late_is_reversed_by_a_1420_it_acknowledges(nursery, tmp_path):
    """The money path across versions: no answer in time -> 91, the switch's 0420 goes out as
    1420 (reason 4021), the issuer credits it back, and its 1430 completes the SAF item (0430)."""
    bank = make_bank({"pan": APPROVE, "balance": 10000, "latency_ms": 300})
    bank.keep_ledger()
    issuer_port = await start_issuer_93(nursery, bank)
    switch, port = await start_switch(nursery, tmp_path, issuer_port, issuer_dialect=ISO93,
                                      listener_dialect="iso87-binary", timeout_ms=100)
    async with open_terminal("127.0.0.1", port) as terminal:
        assert (await terminal.purchase(pan=APPROVE, amount=2500, expiry=EXPIRY))["39"] == "91"
    await until(lambda: not switch.saf.pending("bank"), timeout=5)
    await until(lambda: any(entry["kind"] == "debit" for entry in bank.ledger or []))  # the late original
    assert bank.accounts[APPROVE].balance == 10000
    assert [entry["kind"] for entry in bank.ledger or []].count("reversal") == 1


async def test_a_1993_terminal_through_the_switch_to_a_1987_issuer(nursery, tmp_path):
    bank = make_bank({"pan": APPROVE, "balance": 10000})
    issuer_port = await start_issuer(nursery, bank)
    _, port = await start_switch(nursery, tmp_path, issuer_port, issuer_dialect="iso87-binary",
                                 listener_dialect=ISO93)
    async with open_terminal("127.0.0.1", port, dialect=ISO93) as terminal:
        purchase = terminal.card_request("0200", pan=APPROVE, amount=2500, expiry=EXPIRY)
        assert (await terminal.send(purchase))["39"] == "00"
        assert (await terminal.purchase(pan=APPROVE, amount=999999, expiry=EXPIRY))["39"] == "51"
        assert (await terminal.purchase(pan="3700000000000007", amount=100, expiry=EXPIRY))["39"] == "15"
        reversal = await terminal.reverse(purchase)
        assert (reversal.mti, reversal["39"]) == ("0410", "00")
        assert (await terminal.echo())["39"] == "00"
        assert bank.accounts[APPROVE].balance == 10000
        unknown = terminal.base("0300", "000000", 0, "978")  # 1300 on the wire: no such message here
        answer = await terminal.send(unknown)
        assert (answer.mti, answer["39"]) == ("0310", "12")


async def test_the_1993_issuer_emulator_on_its_own_answers_in_1993(nursery):
    """A 1993 host's view: raw 1993 bytes in, 1993 bytes (action codes) out."""
    bank = make_bank({"pan": APPROVE, "balance": 1000})
    port = await start_issuer_93(nursery, bank)
    dialect = load_dialect(ISO93)
    requests = [Message("1200", {"2": APPROVE, "3": "000000", "4": f"{amount:012d}", "7": "1201120000",
                                 "11": stan, "12": "261201130000", "14": EXPIRY, "22": "510101513001",
                                 "24": "200", "41": "T0000001", "49": "978"})
                for stan, amount in (("000001", 600), ("000002", 600))]
    requests.append(Message("1804", {"7": "1201120000", "11": "000003", "24": "831"}))
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(b"".join(dialect.framing.frame(dialect.encode_wire(r)) for r in requests))
        framer, answers = dialect.framer(), []
        with trio.fail_after(10):
            while len(answers) < len(requests):
                answers += [dialect.decode_wire(frame.payload) for frame in framer.feed(await stream.receive_some())]
    by_stan = {answer.fields["11"]: answer for answer in answers}
    assert (by_stan["000001"].mti, by_stan["000001"].fields["39"]) == ("1210", "000")
    assert by_stan["000001"].fields["12"] == "261201130000"
    assert (by_stan["000002"].mti, by_stan["000002"].fields["39"]) == ("1210", "116")
    assert (by_stan["000003"].mti, by_stan["000003"].fields["39"], by_stan["000003"].fields["24"]) == ("1814", "800", "831")


async def test_the_terminal_emulator_on_its_own_speaks_1993(nursery):
    """What a 1993 acquirer host receives from the terminal emulator: 1200 with 1993 fields."""
    received: list[Message] = []
    dialect = load_dialect(ISO93)

    async def host(stream: trio.SocketStream) -> None:
        framer = dialect.framer()
        async for data in stream:
            for frame in framer.feed(data):
                request = dialect.decode_wire(frame.payload)
                received.append(request)
                answer = Message("1210", {"11": request.fields["11"], "39": "000", "41": request.fields["41"]})
                await stream.send_all(dialect.framing.frame(dialect.encode_wire(answer)))

    listeners = await nursery.start(trio.serve_tcp, host, 0)
    port = listeners[0].socket.getsockname()[1]
    async with open_terminal("127.0.0.1", port, dialect=ISO93) as terminal:
        answer = await terminal.purchase(pan=APPROVE, amount=100, expiry=EXPIRY)
    assert (answer.mti, answer["39"]) == ("0210", "00")
    (request,) = received
    assert request.mti == "1200" and request.fields["24"] == "200"
    assert len(request.fields["12"]) == 12 and len(request.fields["22"]) == 12


async def test_pin_purchases_reach_a_1993_issuer_that_verifies_pins_itself(nursery, tmp_path):
    """The demo network with bank_b speaking 1993: the PIN block the switch translated to bank_b's
    ZPK verifies at bank_b's host (00), a wrong PIN comes back as 117 and reaches the terminal as 55."""
    demo = tmp_path / "demo"
    shutil.copytree(DEMO_DIR, demo)
    for path in (demo / "switch.toml", demo / "issuers" / "bank_b.toml"):
        path.write_text(path.read_text().replace('dialect = "iso87-ascii"', f'dialect = "{ISO93}"'))
    network = await start_network(nursery, tmp_path / "data", config=demo / "switch.toml",
                                  issuer_files=sorted((demo / "issuers").glob("*.toml")))
    assert network.issuers["bank_b"][0].dialect.iso == 1993
    async with open_terminal("127.0.0.1", network.ports["terminals"], pin_key=terminal_pin_key()) as terminal:
        right = await terminal.purchase(pan=BANK_B_CARD, amount=100, expiry=EXPIRY, pin=BANK_B_PIN)
        wrong = await terminal.purchase(pan=BANK_B_CARD, amount=100, expiry=EXPIRY, pin="0000")
    assert (right["39"], wrong["39"]) == ("00", "55")
