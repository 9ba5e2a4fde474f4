"""What the switch makes of messages, free of I/O: which requests are valid, what is forwarded,
what advices and reversals an issuer gets, and what the terminal gets back.

The pipeline's participants (switch.core.pipeline) decide with these functions.
"""

from __future__ import annotations

import attrs

from switch.core.codes import RC
from switch.core.reconciliation import net_field_valid, settlement_date_valid
from switch.core.fields import CVV2_TAG, NEVER_RETURNED, NOT_IN_ADVICES, without
from switch.wire.dialect import MessageDecodeError
from switch.wire.emv import TlvError, parse_tlv
from switch.wire.field48 import without_tag
from switch.wire.masking import pan_from_track2
from switch.wire.message import Message, response_mti


# Fields a response carries back from its request, so the terminal recognises its answer.
ECHO_FIELDS = ("2", "3", "4", "7", "11", "12", "13", "32", "37", "41", "42", "49")
# A request's advice: the same message class, telling the issuer about something already done.
ADVICE_MTI = {"0100": "0120", "0200": "0220", "0400": "0420"}
ADVICE_MTIS = frozenset(ADVICE_MTI.values())
# An MTI's repeat (fourth digit 1): the sender's retransmission of a message it got no answer to.
REPEAT_MTI = {mti: mti[:3] + "1" for mti in (*ADVICE_MTI, *ADVICE_MTIS)}
ORIGINAL_MTI = {repeat: mti for mti, repeat in REPEAT_MTI.items()}
# Message classes that carry a card: checked for a PAN and expiry, routed by BIN.
CARD_MTIS = frozenset({"0100", "0200", "0120", "0220"})

FORWARDED_MTIS = frozenset(REPEAT_MTI)
NETWORK_MTI = "0800"
RECONCILIATION_MTIS = frozenset({"0500", "0520"})  # answered by the switch from its journal
SUPPORTED_MTIS = FORWARDED_MTIS | RECONCILIATION_MTIS | {NETWORK_MTI}
NETWORK_CODES = {"001": "sign-on", "002": "sign-off", "301": "echo"}
PROCESSING_CODES = {"00": "purchase", "01": "cash", "20": "refund", "31": "balance inquiry"}

_CARD_REQUEST = ("3", "4", "7", "11", "41", "49")
_REVERSAL = ("2", "3", "4", "7", "11", "41", "49", "90")
MANDATORY = {
    "0100": _CARD_REQUEST,
    "0200": _CARD_REQUEST,
    "0120": _CARD_REQUEST,
    "0220": _CARD_REQUEST,
    "0400": _REVERSAL,
    "0420": _REVERSAL,
    "0800": ("7", "11", "70"),
    "0500": ("7", "11", "15"),
    "0520": ("7", "11", "15"),
}

# Fields that must be ASCII digits, with their allowed lengths (shortest, longest).
_DIGITS = {
    "2": (12, 19),
    "3": (6, 6),
    "4": (12, 12),
    "7": (10, 10),
    "11": (6, 6),
    "14": (4, 4),
    "49": (3, 3),
    "70": (3, 3),
    "90": (42, 42),
    "15": (4, 4),
    **{field: (10, 10) for field in ("74", "75", "76", "77")},
    **{field: (16, 16) for field in ("86", "87", "88", "89")},
}


def card_pan(message: Message) -> str | None:
    """The PAN from field 2, else from track 2 (field 35)."""
    pan = message.get("2")
    if pan:
        return pan
    track2 = message.get("35")
    return pan_from_track2(track2) if track2 else None


def message_class(mti: str) -> str:
    """The MTI a message is handled as: a repeat (0201) as its original (0200), anything else as is."""
    return ORIGINAL_MTI.get(mti, mti)


@attrs.frozen
class Rejection:
    """Why a request is answered at once: the response code (12 or 30), `reason` for the
    journal and the log line, and `brief` for the terminal (field 44, ISO's an..25). Both name the
    field and the check, never the field's value (it may be card data); built only on failure."""

    code: str
    reason: str
    brief: str


def _missing(field: str, why: str) -> Rejection:
    return Rejection(RC.FORMAT_ERROR, f"field {field}: missing ({why})", f"F{field}: missing")


def _digits_expected(field: str, shortest: int, longest: int) -> Rejection:
    count = str(shortest) if shortest == longest else f"{shortest}-{longest}"
    return Rejection(RC.FORMAT_ERROR, f"field {field}: {count} digits expected", f"F{field}: {count} digits expected")


def _reconciliation_rejected(fields: dict[str, str], mti: str) -> Rejection | None:
    if "41" not in fields and "32" not in fields:
        return _missing("41", f"or field 32: whose totals, mandatory in {mti}")
    if not settlement_date_valid(fields["15"]):
        return Rejection(RC.FORMAT_ERROR, "field 15: a settlement date MMDD expected", "F15: MMDD expected")
    if "97" in fields and not net_field_valid(fields["97"]):
        return Rejection(RC.FORMAT_ERROR, "field 97: C or D and 16 digits expected", "F97: C/D+16 digits")
    return None


def _icc_rejected(value: str) -> Rejection | None:
    """Field 55 must read as BER-TLV (it is forwarded byte for byte, and shown parsed)."""
    try:
        parse_tlv(bytes.fromhex(value))
    except (TlvError, ValueError) as exc:
        why = str(exc) if isinstance(exc, TlvError) else "not hex"
        return Rejection(RC.FORMAT_ERROR, f"field 55: not BER-TLV ({why})", "F55: not BER-TLV")
    return None


def check_request(request: Message) -> Rejection | None:
    """Why to answer at once (12 or 30), or None when the request may proceed.
    Advices get the same checks as requests: an advice is never declined, but one the issuer
    could not read is not accepted either."""
    mti = message_class(request.mti)
    if mti not in SUPPORTED_MTIS:
        # decoding took only 4 digits as an MTI
        return Rejection(RC.NOT_SUPPORTED, f"MTI {request.mti}: not supported", f"MTI {request.mti}: not supported")
    fields = request.fields
    for field in MANDATORY[mti]:
        if field not in fields:
            return _missing(field, f"mandatory in {mti}")
    for field, (shortest, longest) in _DIGITS.items():
        value = fields.get(field)
        if value is not None and not (shortest <= len(value) <= longest and value.isascii() and value.isdigit()):
            return _digits_expected(field, shortest, longest)
    if mti == NETWORK_MTI:
        code = fields["70"]  # 3 digits, checked above: a code, not card data
        if code in NETWORK_CODES:
            return None
        return Rejection(RC.NOT_SUPPORTED, f"field 70: network code {code} not supported",
                         f"F70: code {code} unsupported")
    if mti in RECONCILIATION_MTIS:
        return _reconciliation_rejected(fields, mti)
    if "55" in fields:
        rejected = _icc_rejected(fields["55"])
        if rejected is not None:
            return rejected
    if mti in CARD_MTIS:
        if "2" not in fields and "35" not in fields:
            return Rejection(RC.FORMAT_ERROR, f"field 2 or 35: missing (a card is mandatory in {mti})",
                             "F2 or F35: missing")
        if "35" not in fields and "14" not in fields:
            return _missing("14", "mandatory without field 35")
        if card_pan(request) is None:
            return Rejection(RC.FORMAT_ERROR, "field 35: no PAN in track 2", "F35: no PAN in track 2")
    kind = fields["3"][:2]  # the transaction type: 2 digits of a field checked above
    if kind not in PROCESSING_CODES:
        return Rejection(RC.NOT_SUPPORTED, f"field 3: processing code {kind} not supported",
                         f"F3: code {kind} not supported")
    return None


def respond(request: Message, code: str, issuer_response: Message | None = None) -> Message:
    """The terminal's response: the issuer's fields (if any), with the request's own values
    restored for every echoed field, card secrets removed, and field 39 set to `code`."""
    fields = dict(issuer_response.fields) if issuer_response is not None else {}
    for field in NEVER_RETURNED:
        fields.pop(field, None)
    request_fields = request.fields
    for field in ECHO_FIELDS:
        value = request_fields.get(field)
        if value is not None:
            fields[field] = value
        else:
            fields.pop(field, None)
    fields["39"] = code
    if code != RC.APPROVED:
        fields.pop("38", None)
    return Message(response_mti(request.mti), fields)


# Not kept from a response once it is sent: echoed fields come back from a retransmission's own
# request, and card data is never returned anyway.
NOT_RETAINED = NEVER_RETURNED | frozenset(ECHO_FIELDS)


def retained_response(response: Message) -> dict[str, str]:
    """What the duplicate window keeps of a response: the fields the issuer added (38, 39, 54,
    its ICC data in 55 ...), enough to answer a retransmission as the first time (`respond`
    takes the MTI from the request). A few fields instead of the whole message, in a plain dict
    of strings, which the cycle collector does not track: the window holds hundreds of thousands.
    (The journal keeps less: no field it may not hold, see switch.records.)"""
    return {f: v for f, v in response.fields.items() if f not in NOT_RETAINED}


@attrs.frozen
class OriginalData:
    """Field 90: the original's MTI, STAN, transmission time and acquirer/forwarder ids."""

    mti: str
    stan: str
    transmitted: str
    acquirer: str
    forwarder: str

    @classmethod
    def parse(cls, value: str) -> OriginalData:
        return cls(value[0:4], value[4:10], value[10:20], value[20:31], value[31:42])

    @property
    def identifies_original(self) -> bool:
        """False when the terminal zero-filled the subfields (match by RRN instead)."""
        return self.stan.strip("0") != "" and self.transmitted.strip("0") != ""

    @staticmethod
    def text_of(forwarded: Message) -> str:
        """Field 90's text naming `forwarded` (what the switch sent the issuer) as the original:
        made as text at once, as every caller wants it (twice a transaction; a record made and
        then encoded cost five times as much)."""
        return forwarded.mti + forwarded["11"] + forwarded["7"] + forwarded.get("32", "0").zfill(11)[-11:] + "0" * 11


def replacement_amount(request: Message) -> int | None:
    """Field 95's actual transaction amount for a partial reversal, or None for a full one."""
    value = request.get("95")
    if not value or not (value[:12].isascii() and value[:12].isdigit()) or int(value[:12]) == 0:
        return None
    return int(value[:12])


def _card_not_present(message: Message) -> dict[str, str]:
    """`message`'s fields for an advice, which may wait in SAF and is no proof the card was
    there: card-present secrets and the CVV2 dropped, the PAN in field 2 when it came in track 2.
    Field 48 goes without its CVV2 subelement, and not at all when nothing else is left or when
    it does not read in exactly one layout (the listener's dialect is not known here)."""
    fields = without(message.fields, NOT_IN_ADVICES)
    pan = card_pan(message)
    if "2" not in fields and pan:
        fields["2"] = pan
    if "48" in fields:
        rest = without_tag(fields.pop("48"), CVV2_TAG)
        if rest:
            fields["48"] = rest
    return fields


def reversal_advice(forwarded: Message, reason: str | None = None) -> Message:
    """An 0420 telling the issuer to undo `forwarded` (what the switch had sent it)."""
    fields = _card_not_present(forwarded)
    fields.pop("38", None)
    fields.pop("39", None)
    fields["90"] = OriginalData.text_of(forwarded)
    if reason:
        fields["39"] = reason
    return Message(ADVICE_MTI["0400"], fields)


def stand_in_advice(forwarded: Message, approval: str) -> Message:
    """An 0120/0220 telling the issuer what the switch approved on its behalf."""
    fields = _card_not_present(forwarded)
    fields["38"] = approval
    fields["39"] = RC.APPROVED
    return Message(ADVICE_MTI[forwarded.mti], fields)


def reversal_for_issuer(request: Message, mti: str, sent_as: str | None) -> Message:
    """A terminal's reversal (or reversal advice) as the original's issuer gets it: under `mti`,
    without card-present secrets (it may wait in SAF; a PIN block is still under the terminal's
    key), and with field 90 naming what the switch had sent the issuer (`sent_as`, field 90's
    text), when it knows that."""
    fields = _card_not_present(request)
    if sent_as is not None:
        fields["90"] = sent_as
    return Message(mti, fields)


def acquirer_advice(request: Message, acquirer_id: str | None) -> Message:
    """A terminal's advice as its issuer gets it: the first transmission (a repeat's original
    MTI; SAF marks its own repeats), no card-present secrets, the listener's acquirer id."""
    fields = _card_not_present(request)
    if "32" not in fields and acquirer_id:
        fields["32"] = acquirer_id
    return Message(message_class(request.mti), fields)


def answer_undecodable(error: MessageDecodeError) -> Message | None:
    """A 30 answer for a message whose MTI was readable (echoing 11/41 where decoded), else None."""
    if error.mti is None or int(error.mti[2]) % 2 == 1:
        return None
    fields = {field: value for field, value in error.echo.items() if value}
    fields["39"] = RC.FORMAT_ERROR
    return Message(response_mti(error.mti), fields)


# What an issuer's response carries of its request, enough for a reversal to name it.
_NAMING_FIELDS = ("2", "3", "4", "7", "11", "32", "37", "41", "42", "49")


def unknown_approval_reversal(response: Message) -> Message | None:
    """The 0420 that undoes an approval the switch cannot place (a response to a request it
    does not know it sent): built from the response's own fields; None when it is no approval of
    an authorisation or purchase."""
    request_mti = {"0110": "0100", "0210": "0200"}.get(response.mti)
    fields = response.fields
    if request_mti is None or fields.get("39") != RC.APPROVED or "11" not in fields or "7" not in fields:
        return None
    reversal = {field: fields[field] for field in _NAMING_FIELDS if field in fields}
    original = Message(request_mti, reversal)
    reversal["90"] = OriginalData.text_of(original)
    reversal["39"] = RC.LATE_RESPONSE
    return Message(ADVICE_MTI["0400"], reversal)
