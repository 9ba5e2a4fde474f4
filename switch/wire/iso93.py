"""ISO 8583:1993 <-> ISO 8583:1987: the mapping a 1993 dialect applies at the wire.

Inside the switch every Message keeps ISO 8583:1987 meanings (DESIGN.md's field conventions and
response codes): the pipeline, journal, risk rules, emulators and tools know only those. A dialect
file with `iso = 1993` decodes the wire's 1993 message and hands `from_1993()` of it to its user,
and encodes `to_1993()` of what it is given. So a 1987 terminal reaches a 1993 issuer (and a 1993
terminal a 1987 issuer) without any other part of the switch knowing.

What the mapping does (README, "ISO 8583:1993"):

- MTIs: the version digit (0100 <-> 1100, 0210 <-> 1210, 0500 <-> 1500 ...), except reversals and
  network management, whose 1993 MTIs differ: 0400/0420 -> 1420 (0401/0421 -> 1421), 0410/0430
  -> 1430, 0800/0810/0820/0830 <-> 1804/1814/1820/1830. 0400 and 0420 are told apart by the
  message reason code (field 25): 4000 (customer cancellation) is a terminal's reversal request,
  any other reason an advice; a 1430 is an 0410 when it echoes 4000, else an 0430.
- Field 24 (function code) is set from the MTI (100, 200, 400 or 401 for a partial reversal, 500,
  and for 18xx field 70's code: 001/002/101/301 <-> 801/802/811/831), and read back only for 18xx.
- Field 39: the 2-character response codes <-> 3-digit action codes (RC_TO_ACTION); an approval
  is 400 on reversals, 500 on reconciliations, 800 on network management, else 000; read back, a
  code approves only the kind of message it accepts (ACCEPTED_BY_CLASS: 900 on a 1210 is no
  approval). A refusal without an entry maps by its class; a response code without one becomes
  100 (do not honour): neither direction ever turns an unknown code into an approval.
- Fields 12 + 13 (hhmmss, MMDD) <-> 12 (YYMMDDhhmmss); 15 MMDD <-> YYMMDD; 18 (MCC) <-> 26
  (card acceptor business code); 22 (entry mode) <-> 22 (POS data code, ENTRY_TO_INPUT);
  90 (n42) <-> 56 (LLVAR n..35); 95 (replacement amounts) <-> 4 and 30 of a partial reversal;
  the MAC (64/128) moves to the field the other version's bitmap calls for.
- Fields with the same number and meaning in both versions pass as they are (SAME_FIELDS); every
  other field is dropped, in either direction.

1987 has no year where 1993 has one (12, 15, 56): the year is the one that puts the month
nearest to `today`'s (December's messages written on 1 January stay in the old year).

What is lost, in the 1987 -> 1993 -> 1987 round trip: 02 and 90 entry modes both become 90 (both
are written as the POS data code's magnetic stripe); 1987 fields without a 1993 counterpart (24 NII, 25 POS condition,
26 PIN capture, 28-31 fees, 46, 56-59, 65, 66, 70 outside 08xx, 71, 72, 82-85, 91-96 but 95,
105-110); field 90's forwarding institution (56 has none; it comes back as zeros); field 95's
settlement amount and fees (zeros); a reversal advice's reason beyond 68 (late response); a
response code without an entry (100 then 05). And 1993 -> 1987: 13 (effective date), 25 outside
reversals, the POS data code's positions other than 2 and 7, 28-31, 46, 57-59, 66, 70-72, 82-85,
90-96, 105-110; field 56's date-time carries the original's field 7 (transmission time), not
its local time as ISO 8583:1993 defines it: a 1993 peer that matches reversals on its own field
12 must match on field 11 and 7 instead.

Pure: no I/O (`to_1993` reads the clock for the year unless given `today`). Errors name fields
and expectations, never values (a value may be card data).
"""

from __future__ import annotations

import datetime

from switch.errors import CardswitchError
from switch.wire.macs import MAC_FIELDS, mac_field
from switch.wire.message import Message, is_response



def _digits(text: str) -> bool:
    """ASCII digits only: `str.isdigit` also takes "²", which an EBCDIC byte (0xEA) decodes to."""
    return text.isascii() and text.isdigit()

class MappingError(CardswitchError):
    """A message the other version cannot express (an MTI of another version, a malformed field
    the mapping must read). `expected` says what the mapping needed in `field` ("t" for the MTI);
    `mti` is the 1987 MTI when known, so that a request can still be answered."""

    def __init__(self, expected: str, field: str, mti: str | None = None):
        super().__init__(f"field {field}: {expected} expected")
        self.expected = expected
        self.field = field
        self.mti = mti


# Same number, same meaning (formats may differ: the dialect file has 1993's).
SAME_FIELDS = frozenset(str(n) for n in (
    2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 16, 17, 19, 20, 21, 23, 27, 32, 33, 34, 35, 36, 37, 38, 40,
    41, 42, 43, 44, 45, 47, 48, 49, 50, 51, 52, 53, 54, 55, 60, 61, 62, 63, 67, 68, 69, 73,
    74, 75, 76, 77, 78, 79, 80, 81, 86, 87, 88, 89, 97, 98, 99, 100, 101, 102, 103, 104,
    *range(111, 128)))
# 1987 fixed or shorter widths of fields 1993 writes longer: cut (and 43 padded) on the way in.
WIDTH_1987 = {"43": 40, "44": 25}

# MTIs that are not the other version's with the version digit changed.
MTI_TO_1993 = {"0400": "1420", "0401": "1421", "0410": "1430", "0420": "1420", "0421": "1421",
               "0430": "1430", "0800": "1804", "0810": "1814", "0820": "1820", "0830": "1830"}
MTI_FROM_1993 = {"1420": "0420", "1421": "0421", "1430": "0430", "1804": "0800", "1814": "0810",
                 "1820": "0820", "1830": "0830"}
# Message reason codes (field 25) of 1420/1430.
CUSTOMER_CANCELLATION = "4000"  # a terminal's reversal request: 0400
LATE_RESPONSE = "4006"  # response received too late: 0420 with 39 = 68
TIMEOUT = "4021"  # timeout waiting for response: any other 0420
REVERSAL_REQUESTS = {"1420": "0400", "1421": "0401", "1430": "0410"}

# Field 70 (network management information code) <-> field 24 (function code) of 18xx.
NETWORK_FUNCTION = {"001": "801", "002": "802", "101": "811", "301": "831"}
NETWORK_CODE = {function: code for code, function in NETWORK_FUNCTION.items()}
# Field 24 of other message classes (the MTI's second digit), from ISO 8583:1993's function codes.
CLASS_FUNCTION = {"1": "100", "2": "200", "4": "400", "5": "500"}
PARTIAL_REVERSAL = "401"

# Response codes (DESIGN.md and what issuers answer) <-> ISO 8583:1993 action codes.
RC_TO_ACTION = {
    "00": "000", "01": "107", "02": "108", "03": "109", "04": "200", "05": "100", "08": "001",
    "10": "002", "11": "003", "12": "902", "13": "110", "14": "111", "15": "908", "25": "914",
    "30": "904", "33": "201", "40": "115", "41": "208", "43": "209", "51": "116", "54": "101",
    "55": "117", "56": "118", "57": "119", "58": "120", "59": "102", "61": "121", "62": "104",
    "63": "916", "65": "123", "70": "112", "75": "106", "82": "129", "91": "911", "94": "913",
    "95": "501", "96": "909",
    "N7": "180",  # CVV2 failed: 1993 has none; 180 is of the 1xx codes left to private use (bilateral)
}
ACTION_TO_RC = {action: code for code, action in RC_TO_ACTION.items()} | {
    "006": "10", "907": "91", "910": "91", "912": "91", "502": "95", "504": "95"}
APPROVAL_BY_CLASS = {"4": "400", "5": "500", "8": "800"}  # else 000
# What accepts a message of each 1987 class (the MTI's second digit) in ISO 8583:1993: the 0xx
# codes for authorisations and financial messages; 400 a reversal, 500 a reconciliation, 800
# network management (and 000, which some hosts send for those); 900/901 (advice acknowledged)
# any advice's response (x130, x230, x430). Any other code is no approval of that message: 400
# on a 1210 is not one, nor is 900 on a 1210.
ACCEPTED_BY_CLASS = {"4": frozenset({"400", "000"}), "5": frozenset({"500", "000"}),
                     "8": frozenset({"800", "000"})}
ADVICE_ACKNOWLEDGED = frozenset({"900", "901"})
APPROVING_RCS = frozenset({"00", "08", "10", "11"})  # 1987's approved (partly, with ID, VIP)
ACTION_CLASS_RC = {"1": "05", "2": "04"}  # a refusal without an entry; else 96
UNMAPPED_RC_ACTION = "100"  # a response code without an entry: do not honour

# Field 22. 1987: PAN entry mode (2 digits) + PIN entry capability (1 digit). 1993: the POS data
# code (an12). Written whole (_pos_data_code); read back from position 7 (card data input mode:
# 2 magnetic stripe, 5 ICC, 6 key entered, A contactless magnetic stripe, M contactless ICC) and
# 2 (cardholder authentication capability: 0 none, 1 PIN, 5 inoperative, 9 unknown).
ENTRY_TO_INPUT = {"01": "6", "02": "2", "05": "5", "07": "M", "90": "2", "91": "A"}
INPUT_TO_ENTRY = {"6": "01", "2": "90", "5": "05", "M": "07", "A": "91"}
PIN_TO_AUTH = {"0": "9", "1": "1", "2": "0", "8": "5"}
AUTH_TO_PIN = {auth: pin for pin, auth in PIN_TO_AUTH.items()}
CARD_PRESENT_INPUTS = frozenset("25AM")


def to_1993(message: Message, today: datetime.date | None = None) -> Message:
    """`message` (ISO 8583:1987) as ISO 8583:1993 writes it. MappingError when it cannot be."""
    today = today or _utc_today()
    mti = _mti_to_1993(message.mti)
    source = message.fields
    fields = {f: v for f, v in source.items() if f in SAME_FIELDS}
    if "12" in source or "13" in source:
        fields["12"] = _local_time_1993(source, today)
    if "15" in source:
        fields["15"] = _year(source["15"], today) + source["15"]
    if "18" in source:
        fields["26"] = source["18"]
    if "22" in source:
        fields["22"] = _pos_data_code(source["22"], "52" in source)
    if "90" in source:
        fields["56"] = _original_data_1993(source["90"], today)
    message_class = message.mti[1]
    if message_class == "4":
        _reversal_to_1993(message, fields)
    elif message_class == "8":
        _network_to_1993(message, fields)
    elif message_class in CLASS_FUNCTION:
        fields["24"] = CLASS_FUNCTION[message_class]
    if "39" in source and not (message_class == "4" and not is_response(message.mti)):
        fields["39"] = _action_code(source["39"], message_class)
    _move_mac(source, fields)
    return Message(mti, fields)


def from_1993(message: Message) -> Message:
    """`message` (ISO 8583:1993, as decoded from the wire) with ISO 8583:1987 meanings.
    MappingError when it cannot be read as one."""
    mti = mti_from_1993(message.mti)
    source = message.fields
    fields = {f: v for f, v in source.items() if f in SAME_FIELDS}
    if "53" in fields and not (len(fields["53"]) == 16 and _digits(fields["53"])):
        del fields["53"]  # 1987's is n16
    for field, width in WIDTH_1987.items():
        if field in fields:
            fields[field] = fields[field][:width].ljust(width) if field == "43" else fields[field][:width]
    if "12" in source:
        local = source["12"]
        if len(local) != 12 or not _digits(local):
            raise MappingError("date and time YYMMDDhhmmss (n12)", "12", mti)
        fields["13"], fields["12"] = local[2:6], local[6:12]
    if "15" in source:
        if len(source["15"]) != 6:
            raise MappingError("a date YYMMDD (n6)", "15", mti)
        fields["15"] = source["15"][2:]
    if "26" in source or "18" in source:
        fields["18"] = source.get("26") or source["18"]
    if "22" in source:
        fields["22"] = _entry_mode(source["22"])
    if "56" in source:
        fields["90"] = _original_data_1987(source["56"], mti)
    if mti[1] == "4":
        mti = _reversal_from_1993(message, mti, fields)
    elif mti[1] == "8":
        function = source.get("24", "")
        if function in NETWORK_CODE:
            fields["70"] = NETWORK_CODE[function]
        elif not is_response(mti):
            raise MappingError("a network management function code (801, 802, 811, 831)", "24", mti)
    if "39" in source and "39" not in fields:  # a late reversal advice's 68 stays
        fields["39"] = _response_code(source["39"], mti)
    _move_mac(source, fields)
    return Message(mti, fields)


def mti_from_1993(mti: str) -> str:
    """The 1987 MTI of a 1993 one. MappingError for an MTI of another version."""
    return _other_version(mti, MTI_FROM_1993, "1", "0", "an ISO 8583:1993 MTI (version digit 1)")


def _mti_to_1993(mti: str) -> str:
    return _other_version(mti, MTI_TO_1993, "0", "1", "an ISO 8583:1987 MTI (version digit 0)")


def _other_version(mti: str, exceptions: dict[str, str], version: str, other: str, expected: str) -> str:
    """`mti` in the other version: its entry in `exceptions`, else the version digit changed."""
    if mti in exceptions:
        return exceptions[mti]
    if len(mti) != 4 or not _digits(mti) or mti[0] != version:
        raise MappingError(expected, "t")
    return other + mti[1:]


def _utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def _year(mmdd: str, today: datetime.date) -> str:
    """YY for month `mmdd[:2]`: last year's when that month is more than six months after
    today's, next year's when more than six before, else this year's (also when it is no month).
    Months, not days: it runs for every message, and a month either side is never in doubt."""
    month = int(mmdd[:2]) if _digits(mmdd[:2]) else today.month
    year = today.year - (month - today.month > 6) + (today.month - month > 6)
    return f"{year % 100:02d}"


def _local_time_1993(source: dict[str, str], today: datetime.date) -> str:
    """Field 12 (YYMMDDhhmmss) from 1987's 13 (MMDD) and 12 (hhmmss). Without 13, the date of
    field 7 (or today); without 12, midnight."""
    date = source.get("13") or source.get("7", "")[:4] or today.strftime("%m%d")
    return _year(date, today) + date + source.get("12", "000000")


def _pos_data_code(entry: str, pin_block: bool) -> str:
    """The POS data code (12 positions) for a 1987 entry mode."""
    data_input = ENTRY_TO_INPUT.get(entry[:2], "0")
    present = data_input in CARD_PRESENT_INPUTS
    authentication = PIN_TO_AUTH.get(entry[2:3], "9")
    return "".join((
        data_input,  # 1 card data input capability: at least what was used
        authentication,  # 2 cardholder authentication capability
        "0",  # 3 card capture capability: none
        "1",  # 4 operating environment: on the card acceptor's premises, attended
        "0" if present else "1",  # 5 cardholder present / not present
        "1" if present else "0",  # 6 card present / not present
        data_input,  # 7 card data input mode
        "1" if pin_block else "0",  # 8 cardholder authentication method: PIN, or none
        "3" if pin_block else "0",  # 9 authentication entity: authorizing agent (online PIN)
        "0",  # 10 card data output capability: unknown
        "0",  # 11 terminal output capability: unknown
        "0" if entry[2:3] == "2" else "1",  # 12 PIN capture capability: none, or unknown length
    ))


def _entry_mode(code: str) -> str:
    """1987's entry mode from a POS data code's positions 7 and 2 (00x when unknown)."""
    return INPUT_TO_ENTRY.get(code[6:7], "00") + AUTH_TO_PIN.get(code[1:2], "0")


def _original_data_1993(value: str, today: datetime.date) -> str:
    """Field 56 from field 90: MTI (1993), STAN, date and time (field 7 with its year), and the
    acquirer id as an LLVAR without leading zeros. The forwarder id has no place."""
    if len(value) != 42 or not _digits(value):
        raise MappingError("original data elements (n42)", "90")
    acquirer = value[20:31].lstrip("0")
    return (_mti_to_1993(value[0:4]) + value[4:10] + _year(value[10:14], today) + value[10:20]
            + f"{len(acquirer):02d}" + acquirer)


def _original_data_1987(value: str, mti: str) -> str:
    """Field 90 from field 56 (MTI, STAN, YYMMDDhhmmss, LL acquirer id)."""
    acquirer = value[24:]
    if (not _digits(value) or len(value) < 24 or int(value[22:24] or 0) != len(acquirer)
            or len(acquirer) > 11):
        raise MappingError("original data elements (MTI, STAN, YYMMDDhhmmss, LL acquirer id)",
                           "56", mti)
    try:
        original = mti_from_1993(value[0:4])
    except MappingError:
        raise MappingError("original data elements with an ISO 8583:1993 MTI", "56", mti) from None
    return original + value[4:10] + value[12:22] + acquirer.zfill(11) + "0" * 11


def _reversal_to_1993(message: Message, fields: dict[str, str]) -> None:
    """Field 25 (why), 24 (full or partial) and, for a partial reversal, 4 (the actual amount)
    and 30 (the original amounts: 1987's field 4 and 5)."""
    source = message.fields
    if message.mti in ("0400", "0401", "0410"):
        fields["25"] = CUSTOMER_CANCELLATION
    elif not is_response(message.mti):
        fields["25"] = LATE_RESPONSE if source.get("39") == "68" else TIMEOUT
    replacement = source.get("95", "")[:12]
    if _digits(replacement) and int(replacement) and "4" in source:
        fields["30"] = source["4"] + source.get("5", "0" * 12)
        fields["4"] = replacement
        fields["24"] = PARTIAL_REVERSAL
    else:
        fields["24"] = CLASS_FUNCTION["4"]


def _reversal_from_1993(message: Message, mti: str, fields: dict[str, str]) -> str:
    """The 1987 MTI of a 14xx (0400 for reason 4000), its 39 for a late response, and a partial
    reversal's 4 (the original amount) and 95 (the actual one)."""
    source = message.fields
    reason = source.get("25")
    if reason == CUSTOMER_CANCELLATION and message.mti in REVERSAL_REQUESTS:
        mti = REVERSAL_REQUESTS[message.mti]
    elif reason == LATE_RESPONSE and not is_response(mti):
        fields["39"] = "68"
    original = source.get("30", "")
    if original:
        if len(original) != 24 or not _digits(original):
            raise MappingError("original amounts (n24)", "30", mti)
        fields["95"] = source.get("4", "0" * 12) + "0" * 30
        fields["4"] = original[:12]
    return mti


def _network_to_1993(message: Message, fields: dict[str, str]) -> None:
    code = message.fields.get("70")
    if code in NETWORK_FUNCTION:
        fields["24"] = NETWORK_FUNCTION[code]
    elif not is_response(message.mti):
        raise MappingError("a network management code with a 1993 function code (001, 002, 101, 301)",
                           "70", message.mti)


def _action_code(code: str, message_class: str) -> str:
    if code == "00":
        return APPROVAL_BY_CLASS.get(message_class, "000")
    return RC_TO_ACTION.get(code, UNMAPPED_RC_ACTION)


def _response_code(action: str, mti: str) -> str:
    """The 1987 response code of `action` on a response of MTI `mti` (1987's): an approval only
    where the action code accepts that kind of message (ACCEPTED_BY_CLASS), never by default."""
    if not (len(action) == 3 and _digits(action)):
        return "96"
    accepting = ACCEPTED_BY_CLASS.get(mti[1])
    acknowledged = action in ADVICE_ACKNOWLEDGED and mti[2] == "3"
    if acknowledged or (action in accepting if accepting is not None else action[0] == "0"):
        return ACTION_TO_RC.get(action, "00") if accepting is None and not acknowledged else "00"
    code = ACTION_TO_RC.get(action)
    if code is not None and code not in APPROVING_RCS:
        return code
    return ACTION_CLASS_RC.get(action[0], "96")


def _move_mac(source: dict[str, str], fields: dict[str, str]) -> None:
    """The MAC into the field the new field set calls for (128 with a secondary bitmap)."""
    for field in MAC_FIELDS:
        fields.pop(field, None)
    mac = source.get("128", source.get("64"))
    if mac is not None:
        fields[mac_field(fields)] = mac
