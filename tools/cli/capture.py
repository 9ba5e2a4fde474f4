"""`cardswitch capture convert IN OUT`: change a capture's format, or sanitize it for sharing."""

from __future__ import annotations

from switch.capture.sanitize import Sanitizer
from switch.capture.sink import FORMATS
from switch.errors import UsageError
from switch.wire.dialect import load_dialect
from tools.capture.convert import convert
from tools.capture.load import load_capture


def register(subparsers) -> None:
    parser = subparsers.add_parser("capture", help="work with capture files")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    convert_parser = actions.add_parser("convert", help="rewrite a capture as JSON lines or pcapng, optionally sanitized")
    convert_parser.add_argument("source", metavar="IN", help="capture: JSON lines, pcap or pcapng")
    convert_parser.add_argument("target", metavar="OUT", help="file to write")
    convert_parser.add_argument("--format", choices=FORMATS, help="jsonl (default) or pcapng (default for *.pcapng)")
    convert_parser.add_argument("--sanitize", action="store_true",
                                help="test PANs instead of real ones; no track, PIN, CVV2 or ICC data")
    convert_parser.add_argument("--dialect", help="pcap/pcapng input: the dialect on the wire (default iso87-binary)")
    convert_parser.add_argument("--server-port", type=int, metavar="PORT",
                                help="pcap/pcapng input: the server's port (default: the port that received the SYN); "
                                     "pcapng output: the server port written (default 8583)")
    convert_parser.set_defaults(func=run_convert)


def run_convert(args) -> int:
    if args.source == args.target:
        raise UsageError("OUT must differ from IN")
    dialect = load_dialect(args.dialect) if args.dialect else None
    records = load_capture(args.source, dialect, args.server_port)
    try:
        written, dropped = convert(records, args.target, args.format,
                                   Sanitizer() if args.sanitize else None, args.server_port or 8583)
    except OSError as exc:
        raise UsageError(f"{args.target}: cannot write ({exc.strerror})") from None
    note = f", {dropped} unreadable frames left out" if dropped else ""
    print(f"{written} frames written to {args.target}{note}")
    return 0
