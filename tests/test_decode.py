"""`cardswitch decode` as a user runs it: a real process, masked output, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

from switch.wire.dialect import load_dialect
from switch.wire.message import Message

PAN = "4761730000000011"
TRACK2 = f"{PAN}=30121011234500000"
MESSAGE = Message("0200", {"2": PAN, "3": "000000", "4": "000000001234", "11": "000042", "35": TRACK2,
                           "41": "T0000001", "48": "0103abc9203123", "52": "0123456789ABCDEF"})


def decode(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switch.cli", "decode", *args],
                          capture_output=True, text=True, timeout=30)


def test_framed_hex_is_shown_masked_with_field_names():
    result = decode(load_dialect("iso87-binary").frame(MESSAGE).hex())
    assert result.returncode == 0, result.stderr
    assert "MTI  0200" in result.stdout
    assert "Primary Account Number (PAN)" in result.stdout and "476173******0011" in result.stdout
    assert "0103abc9203***" in result.stdout
    for secret in (PAN, "30121011234500000", "0123456789ABCDEF"):
        assert secret not in result.stdout


def test_a_pan_in_any_field_is_masked_unless_asked():
    """A misaligned message can carry card data in any field: decode masks PAN-like digits there too."""
    odd = Message("0200", {"3": "000000", "11": "000042", "43": f"SHOP {PAN} CITY".ljust(40),
                           "42": "X12345678901234"})
    frame = load_dialect("iso87-binary").frame(odd).hex()
    result = decode(frame)
    assert result.returncode == 0, result.stderr
    assert PAN not in result.stdout and "SHOP 476173******0011 CITY" in result.stdout
    assert "X12345678901234" in result.stdout  # digits that cannot be a PAN stay
    assert PAN in decode(frame, "--unmask").stdout


def test_bare_message_from_a_file_as_json_with_tpdu_dialect(tmp_path):
    dialect = load_dialect("pos-tpdu")
    path = tmp_path / "message.bin"
    path.write_bytes(dialect.frame(MESSAGE, b"\x60\x00\x01\x00\x00"))
    result = decode(str(path), "--dialect", "pos-tpdu", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["mti"] == "0200" and shown["tpdu"] == "6000010000"
    values = {item["field"]: item["value"] for item in shown["fields"]}
    assert values["2"] == "476173******0011" and values["11"] == "000042"
    assert PAN not in result.stdout


def test_unmask_shows_the_clear_values():
    result = decode(load_dialect("iso87-binary").encode(MESSAGE).hex(), "--unmask")
    assert result.returncode == 0 and PAN in result.stdout and TRACK2 in result.stdout


def test_bad_hex_is_one_line_and_exit_2():
    result = decode("4761730000000011zz")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("cardswitch: error: HEX:")
    assert "4761730000000011" not in result.stderr


def test_undecodable_message_is_one_line_and_exit_2():
    result = decode("30323030ffff")
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def test_a_long_message_in_hex_is_decoded_not_taken_for_a_file_name():
    """Over 255 characters the argument cannot be a file name: it used to crash with the
    whole message (PAN, PIN block) in a traceback."""
    long = Message("0200", {**MESSAGE.fields, "43": "SHOP".ljust(40), "48": "0103abc" + "9" * 60})
    frame = load_dialect("iso87-binary").frame(long).hex()
    assert len(frame) > 255
    for text in (frame, ":".join(frame[i:i + 2] for i in range(0, len(frame), 2)),
                 " ".join(frame[i:i + 2] for i in range(0, len(frame), 2))):
        result = decode(text)
        assert result.returncode == 0, result.stderr
        assert "MTI  0200" in result.stdout and PAN not in result.stdout


def test_a_long_bad_argument_is_one_line_without_its_contents():
    text = load_dialect("iso87-binary").frame(MESSAGE).hex() + "zz"
    result = decode(text)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("cardswitch: error: HEX:") and PAN not in result.stderr


def test_an_iso93_message_is_shown_as_the_wire_has_it_then_as_the_switch_reads_it():
    reply = Message("0210", {"2": PAN, "11": "000042", "12": "130000", "13": "1201", "39": "51", "41": "T0000001"})
    frame = load_dialect("iso93-binary").frame(reply).hex()
    text = decode(frame, "--dialect", "iso93-binary")
    assert text.returncode == 0, text.stderr
    wire, _, as_1987 = text.stdout.partition("as ISO 8583:1987")
    assert "MTI  1210" in wire and "Action Code" in wire and " 116" in wire and "Function Code" in wire
    assert "MTI  0210" in as_1987 and "Response Code" in as_1987 and " 51" in as_1987
    assert PAN not in text.stdout
    shown = json.loads(decode(frame, "--dialect", "iso93-binary", "--json").stdout)
    assert (shown["mti"], shown["iso"], shown["as_1987"]["mti"]) == ("1210", 1993, "0210")
    assert {"field": "39", "name": "Response Code", "value": "51"} in shown["as_1987"]["fields"]


def test_an_iso93_message_the_switch_cannot_map_is_still_shown_with_why():
    unmappable = load_dialect("iso93-binary").encode_wire(Message("1804", {"11": "000001", "24": "899"}))
    result = decode(unmappable.hex(), "--dialect", "iso93-binary")
    assert result.returncode == 0, result.stderr
    assert "MTI  1804" in result.stdout
    assert "as ISO 8583:1987 (what the switch reads): undecodable message: field 24: a network management function code" in result.stdout
