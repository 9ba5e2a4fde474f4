"""`cardswitch decode HEX|FILE`: one message, field by field, with field names; masked by default.

The input is hex (spaces and colons allowed) or a file holding hex text or raw bytes, either a
bare ISO 8583 message or one frame with its length header (and TPDU) as the dialect frames it.
Errors never echo the input, since it may be card data. An ISO 8583:1993 dialect shows the
message as the wire has it (1993 fields and codes), then as the switch reads it (1987's).
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from switch.capture.record import CaptureFormatError, unframe
from switch.errors import UsageError
from switch.wire.dialect import Dialect, MessageDecodeError, load_dialect
from switch.wire.framing import FramingError
from switch.wire.masking import masked_value
from switch.wire.message import Message

HEX_SEPARATORS = str.maketrans("", "", string.whitespace + ":")


def register(subparsers) -> None:
    parser = subparsers.add_parser("decode", help="show an ISO 8583 message field by field (masked)")
    parser.add_argument("message", metavar="HEX|FILE", help="hex digits (spaces and colons allowed), or a file of hex text or raw bytes "
                        "(an argument that reads as hex is taken as hex: write ./NAME for such a file)")
    parser.add_argument("--dialect", default="iso87-binary", help="dialect (default iso87-binary)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--unmask", action="store_true", help="show PAN, tracks, PIN block and CVV2 in clear")
    parser.set_defaults(func=run)


def hex_bytes(text: str) -> bytes | None:
    """The bytes `text` spells in hex (spaces, colons and a leading 0x allowed), or None."""
    digits = text.translate(HEX_SEPARATORS)
    if digits[:2].lower() == "0x":
        digits = digits[2:]
    try:
        return bytes.fromhex(digits)
    except ValueError:
        return None


def parse_hex(text: str, source: str) -> bytes:
    data = hex_bytes(text)
    if data is None:
        raise UsageError(f"{source}: expected hexadecimal digits (an even number of 0-9, a-f) or an existing file")
    if not data:
        raise UsageError(f"{source}: empty message")
    return data


def read_input(argument: str) -> bytes:
    """Hex when the argument reads as hex (so a long message is never taken for a file name),
    otherwise a file. Neither error repeats the argument: it may be a whole message."""
    if hex_bytes(argument) is not None:
        return parse_hex(argument, "HEX")
    path = Path(argument)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # too long, or not a name at all: it was meant as hex
        is_file = False
    if not is_file:
        return parse_hex(argument, "HEX")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{argument}: cannot read ({exc.strerror})") from None
    try:
        return parse_hex(raw.decode("ascii"), argument)
    except (UnicodeDecodeError, UsageError):
        return raw


def split(dialect: Dialect, data: bytes) -> tuple[bytes, bytes]:
    """(network header, payload): a framed message is unframed, anything else is taken as a bare
    message."""
    try:
        frame = unframe(dialect, data)
    except (CaptureFormatError, FramingError):
        return b"", data
    return frame.header, frame.payload


def shown(message: Message, names: Dialect, unmask: bool, dialect: Dialect | None = None) -> dict[str, Any]:
    """`message` for display: fields in order, named by `names`' spec, masked unless asked, field
    48 read in the layout of the `dialect` it came in (`names`' by default)."""
    layout = (dialect or names).field48
    fields = sorted(message.fields.items(), key=lambda item: int(item[0]))
    return {"mti": message.mti, "fields": [
        {"field": f, "name": names.describe(f), "value": v if unmask else masked_value(f, v, layout)}
        for f, v in fields]}


def as_1987(dialect: Dialect, payload: bytes, unmask: bool) -> dict[str, Any]:
    """What the switch reads from a 1993 message (with 1987's field names), or why it cannot."""
    try:
        return shown(dialect.decode(payload), load_dialect(), unmask, dialect)
    except MessageDecodeError as exc:
        return {"error": str(exc)}


def run(args) -> int:
    dialect = load_dialect(args.dialect)
    header, payload = split(dialect, read_input(args.message))
    wire = shown(dialect.decode_wire(payload), dialect, args.unmask)
    mapped = as_1987(dialect, payload, args.unmask) if dialect.iso != 1987 else None
    if args.json:
        print(json.dumps({"mti": wire["mti"], **({dialect.framing.header.kind: header.hex()} if header else {}),
                          "fields": wire["fields"], **({"iso": dialect.iso, "as_1987": mapped} if mapped else {})}))
        return 0
    if header:
        print(f"{dialect.framing.header.kind.upper():<4} {header.hex()}")
    print_fields(wire)
    if mapped is not None:
        print("\nas ISO 8583:1987 (what the switch reads):", mapped.get("error", ""))
        print_fields(mapped)
    return 0


def print_fields(message: dict[str, Any]) -> None:
    if "mti" in message:
        print(f"MTI  {message['mti']}")
    for field in message.get("fields", ()):
        print(f"{field['field']:>4} {field['name']:<40} {field['value']}")
