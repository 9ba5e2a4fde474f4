"""Dialects: a pyiso8583 field spec, a framing profile and field 48's layout, loaded from TOML
data in specs/.

A listener and each issuer link name a dialect; the switch decodes with one and re-encodes with
another. Decoding failures become `MessageDecodeError`, which keeps only what is safe and useful
for an answer (the MTI, STAN and terminal id when they were readable), never the raw bytes.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import attrs
import iso8583

from switch.errors import CardswitchError, ConfigError
from switch.wire.fastcodec import CompiledSpec, compile_spec
from switch.wire.field48 import Layout
from switch.wire import iso93
from switch.wire.framing import DEFAULT_MAX_FRAME, LENGTH_KINDS, Framer, FramingProfile
from switch.wire.headers import HEADER_KINDS, Base24Header
from switch.wire.message import Message

DIALECTS_DIR = Path(__file__).resolve().parents[2] / "specs" / "dialects"
DEFAULT_DIALECT = "iso87-binary"
FIELD_KEYS = ("data_enc", "len_enc", "len_type", "max_len", "desc", "len_count", "left_pad", "right_pad")
# Field data: ASCII, binary ("b": packed BCD for numerics counted in nibbles, else raw bytes), or
# EBCDIC; length prefixes: ASCII digits, binary, packed BCD or EBCDIC digits. pyiso8583 reads and
# writes them all; the fast codec (switch.wire.fastcodec) covers all but EBCDIC length prefixes
# and leaves anything it declines to pyiso8583, with the same results.
DATA_ENCODINGS = ("ascii", "b", "cp037", "cp500")
LENGTH_ENCODINGS = ("ascii", "b", "bcd", "cp037", "cp500")
# Fields read back from a partly decoded message to address an error answer.
ECHO_ON_ERROR = ("11", "41")


class MessageDecodeError(CardswitchError):
    """A frame that is not a valid message in this dialect.

    `mti` is set when the message type was readable (4 digits), so the caller can still answer
    with the response MTI and code 30; `echo` holds fields 11/41 when they were decoded whole
    (never the field the decoder failed on).
    """

    def __init__(self, reason: str, field: str | None, mti: str | None, echo: dict[str, str]):
        where = f"field {field}: " if field else ""
        super().__init__(f"undecodable message: {where}{reason}")
        self.field = field
        self.mti = mti
        self.echo = echo


class MessageEncodeError(CardswitchError):
    """A message that cannot be written in this dialect (a value too long, a bad character)."""


@attrs.frozen
class Dialect:
    iso: ClassVar[int] = 1987  # the ISO 8583 version on the wire; messages in memory are 1987's
    name: str
    spec: dict[str, dict[str, Any]] = attrs.field(repr=False)
    framing: FramingProfile
    field48: Layout = Layout.PLAIN  # how field 48's subelements are laid out (switch.wire.field48)
    # Track 2 (field 35) in packed BCD, its separator "=" as the nibble D (ISO 7813 packed): the
    # message keeps "=", the wire "D" ([track2] bcd = true).
    track2_bcd: bool = False
    # pyiso8583's spec compiled for well-formed messages; pyiso8583 handles everything else
    fast: CompiledSpec | None = attrs.field(
        default=attrs.Factory(lambda self: compile_spec(self.spec), takes_self=True),
        init=False, repr=False, eq=False)

    def decode(self, payload: bytes) -> Message:
        decoded = self.fast.decode(payload) if self.fast is not None else None
        if decoded is not None and _is_mti(decoded[0]):
            mti, fields = decoded
        else:
            mti, fields = self._decode_reference(payload)
        if self.track2_bcd and "35" in fields:
            fields["35"] = fields["35"].replace("D", "=")
        return Message(mti, fields)

    def _decode_reference(self, payload: bytes) -> tuple[str, dict[str, str]]:
        """pyiso8583's reading, and its exact error for what the fast codec declined."""
        try:
            fields, _ = iso8583.decode(payload, self.spec)
        except iso8583.DecodeError as exc:
            partial = exc.doc_dec
            mti = partial.get("t")
            readable = mti if mti and _is_mti(mti) else None
            # pyiso8583 enters the field it fails on as "" before decoding it: only fields it
            # finished are echoed (an empty field 11 cannot be encoded, and the answer was lost).
            echo = {f: partial[f] for f in ECHO_ON_ERROR if partial.get(f) and f != exc.field}
            raise MessageDecodeError(exc.msg, exc.field, readable, echo) from None
        except Exception as exc:  # pyiso8583 has other failure modes (e.g. a tertiary bitmap)
            raise MessageDecodeError(f"unsupported layout ({type(exc).__name__})", None, None, {}) from None
        mti = fields.pop("t")
        if not _is_mti(mti):
            raise MessageDecodeError("MTI is not 4 digits", "t", None, {})
        fields.pop("p", None)
        fields.pop("1", None)
        fields.pop("h", None)
        return mti, fields

    def encode(self, message: Message) -> bytes:
        fields = message.fields
        if self.track2_bcd and "35" in fields:
            fields = {**fields, "35": fields["35"].replace("=", "D")}
        if self.fast is not None:
            data = self.fast.encode(message.mti, fields)
            if data is not None:
                return data
        try:
            encoded, _ = iso8583.encode({**fields, "t": message.mti}, self.spec)
        except iso8583.EncodeError as exc:
            raise MessageEncodeError(f"cannot encode field {exc.field}: {exc.msg}") from None
        return bytes(encoded)

    def frame(self, message: Message, header: bytes = b"") -> bytes:
        """Encoded and framed behind its network header, ready for the socket."""
        return self.framing.frame(self.encode(message), header)

    def framer(self, max_frame: int = DEFAULT_MAX_FRAME) -> Framer:
        return Framer(self.framing, max_frame)

    def describe(self, field: str) -> str:
        return self.spec.get(field, {}).get("desc", "")

    def decode_wire(self, payload: bytes) -> Message:
        """The message as the wire has it: what `decode` gives, but in the wire's ISO version."""
        return Dialect.decode(self, payload)

    def encode_wire(self, message: Message) -> bytes:
        """`message` written as it is, in the wire's ISO version (`encode` takes 1987's)."""
        return Dialect.encode(self, message)


@attrs.frozen
class Iso93Dialect(Dialect):
    """ISO 8583:1993 on the wire (`iso = 1993` in the dialect file), ISO 8583:1987 in memory:
    `decode` maps what it read to 1987, `encode` maps to 1993 what it writes (switch.wire.iso93),
    so every user of a dialect speaks 1993 without knowing it. A 1993 message the mapping cannot
    read is a MessageDecodeError like any undecodable one: answered 30 when its MTI maps to 1987."""

    iso: ClassVar[int] = 1993

    def decode(self, payload: bytes) -> Message:
        try:
            wire = Dialect.decode(self, payload)
        except MessageDecodeError as exc:
            exc.mti = _mti_1987(exc.mti)  # the answer is built in 1987 terms, then mapped back
            raise
        try:
            return iso93.from_1993(wire)
        except iso93.MappingError as exc:
            echo = {f: wire.fields[f] for f in ECHO_ON_ERROR if wire.fields.get(f)}
            raise MessageDecodeError(f"{exc.expected} expected (ISO 8583:1993 to 1987)", exc.field, exc.mti,
                                     echo) from None
        except (ValueError, KeyError, IndexError) as exc:  # a value the mapping missed: undecodable, never a crash
            raise MessageDecodeError(f"not mappable to ISO 8583:1987 ({type(exc).__name__})", None,
                                     _mti_1987(wire.mti), {}) from None

    def encode(self, message: Message) -> bytes:
        try:
            mapped = iso93.to_1993(message)
        except iso93.MappingError as exc:
            raise MessageEncodeError(f"cannot write as ISO 8583:1993: {exc}") from None
        except (ValueError, KeyError, IndexError) as exc:  # a value the mapping missed: unencodable
            raise MessageEncodeError(f"cannot write as ISO 8583:1993 ({type(exc).__name__})") from None
        return Dialect.encode(self, mapped)


def _mti_1987(mti: str | None) -> str | None:
    """The 1987 MTI an undecodable 1993 message is answered under (None: not answerable)."""
    try:
        return iso93.mti_from_1993(mti) if mti is not None else None
    except iso93.MappingError:
        return None


def _is_mti(text: str) -> bool:
    """Four ASCII digits (`str.isdigit` alone takes "²", an EBCDIC byte's reading)."""
    return len(text) == 4 and text.isascii() and text.isdigit()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(path, "(file)", f"a readable dialect file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "(file)", f"valid TOML ({exc})") from None


def _check_field(path: Path, key: str, field: Any) -> dict[str, Any]:
    if not isinstance(field, dict) or set(field) - set(FIELD_KEYS):
        raise ConfigError(path, f"fields.{key}", f"a table with keys among {', '.join(FIELD_KEYS)}")
    for enc, allowed in (("data_enc", DATA_ENCODINGS), ("len_enc", LENGTH_ENCODINGS)):
        if field.get(enc) not in allowed:
            raise ConfigError(path, f"fields.{key}.{enc}", "one of " + ", ".join(f'"{name}"' for name in allowed))
    if field.get("len_count", "bytes") not in ("bytes", "nibbles"):
        raise ConfigError(path, f"fields.{key}.len_count", '"bytes" or "nibbles" (packed BCD digits)')
    for pad in ("left_pad", "right_pad"):
        if pad in field and not (isinstance(field[pad], str) and len(field[pad]) == 1):
            raise ConfigError(path, f"fields.{key}.{pad}", "one character (e.g. \"0\" or \"F\" for odd BCD digits)")
    if field.get("len_type") not in (0, 1, 2, 3, 4):
        raise ConfigError(path, f"fields.{key}.len_type", "an integer from 0 to 4")
    if not isinstance(field.get("max_len"), int) or field["max_len"] < 0:
        raise ConfigError(path, f"fields.{key}.max_len", "a non-negative integer")
    return {"desc": "", **field}


def _field48_layout(path: Path, data: dict[str, Any], inherited: Layout) -> Layout:
    """`[field48] layout`, else the layout of the dialect this one extends."""
    table = data.get("field48", {})
    if not isinstance(table, dict) or set(table) - {"layout"}:
        raise ConfigError(path, "field48", "a table with the key layout")
    if "layout" not in table:
        return inherited
    try:
        return Layout(table["layout"])
    except ValueError:
        raise ConfigError(path, "field48.layout", " or ".join(f'"{layout.value}" ({layout.shape})'
                                                              for layout in Layout)) from None


def _framing(path: Path, table: Any) -> FramingProfile:
    """`[framing]`: length, header (tpdu = true is the older spelling of header = "tpdu"), etx,
    and BASE24's responder code."""
    expected = ('keys length ("' + '", "'.join(LENGTH_KINDS) + '"), header ("' + '", "'.join(HEADER_KINDS)
                + '"), etx (bool), responder (one digit, base24 only)')
    if not isinstance(table, dict) or set(table) - {"length", "header", "tpdu", "etx", "responder"}:
        raise ConfigError(path, "framing", expected)
    kind = table.get("header", "tpdu" if table.get("tpdu") is True else "none")
    if kind not in HEADER_KINDS or ("tpdu" in table and not isinstance(table["tpdu"], bool)):
        raise ConfigError(path, "framing.header", "one of " + ", ".join(f'"{name}"' for name in HEADER_KINDS))
    if "responder" in table and kind != Base24Header.kind:
        raise ConfigError(path, "framing.responder", 'nothing unless header = "base24"')
    try:
        header = HEADER_KINDS[kind](**({"responder": table["responder"]} if "responder" in table else {}))
    except ValueError:
        raise ConfigError(path, "framing.responder", "one digit (BASE24's responder code)") from None
    if not isinstance(table.get("etx", False), bool):
        raise ConfigError(path, "framing.etx", "true or false")
    try:
        return FramingProfile(length=table.get("length", "binary2"), header=header, etx=table.get("etx", False))
    except (TypeError, ValueError):
        raise ConfigError(path, "framing", expected) from None


def _resolve(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        return candidate
    return DIALECTS_DIR / f"{name_or_path}.toml"


@lru_cache(maxsize=None)
def load_dialect(name_or_path: str = DEFAULT_DIALECT) -> Dialect:
    """A dialect by name (a file in specs/dialects) or by path to a TOML file."""
    path = _resolve(name_or_path)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in DIALECTS_DIR.glob("*.toml")))
        raise ConfigError(path, "dialect", f"a dialect file; known dialects: {known}")
    data = _read_toml(path)
    spec: dict[str, dict[str, Any]] = {}
    field48, track2_bcd, iso = Layout.PLAIN, False, Dialect.iso
    if "extends" in data:
        parent = load_dialect(str(data["extends"]))
        spec = {k: dict(v) for k, v in parent.spec.items()}
        field48, track2_bcd, iso = parent.field48, parent.track2_bcd, parent.iso
    for key, field in data.get("fields", {}).items():
        spec[key] = _check_field(path, key, field)
    for required in ("h", "t", "p"):
        if required not in spec:
            raise ConfigError(path, f"fields.{required}", "a definition (or `extends` a dialect that has one)")
    profile = _framing(path, data.get("framing", {}))
    iso = data.get("iso", iso)
    if iso not in (1987, 1993):
        raise ConfigError(path, "iso", "1987 or 1993 (the ISO 8583 version on the wire)")
    track2 = data.get("track2", {})
    if not isinstance(track2, dict) or set(track2) - {"bcd"} or not isinstance(track2.get("bcd", False), bool):
        raise ConfigError(path, "track2", "a table with the key bcd (true or false)")
    track2_bcd = track2.get("bcd", track2_bcd)
    if track2_bcd and spec.get("35", {}).get("data_enc") != "b":
        raise ConfigError(path, "track2.bcd", 'field 35 in packed BCD (data_enc = "b", len_count = "nibbles")')
    kind = Iso93Dialect if iso == 1993 else Dialect
    return kind(name=str(data.get("name", path.stem)), spec=spec, framing=profile,
                   field48=_field48_layout(path, data, field48), track2_bcd=track2_bcd)
