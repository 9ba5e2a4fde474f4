"""Response codes (field 39): one enum, with what each code means.

The switch sets some of these itself (DESIGN.md, "Response codes the switch itself produces");
the others are what issuers commonly answer, named here so that terminal output, log lines and
`journal list` can say what a code means instead of leaving the reader to look it up.
"""

from __future__ import annotations

import enum


class RC(enum.StrEnum):
    """A response code. Members are strings ("00"), so they go into messages and the journal as
    they are; `meaning` is the text shown beside them."""

    APPROVED = "00"
    REFER_TO_ISSUER = "01"
    INVALID_MERCHANT = "03"
    DO_NOT_HONOUR = "05"
    NOT_SUPPORTED = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD = "14"
    NO_ROUTE = "15"
    ORIGINAL_NOT_FOUND = "25"
    FORMAT_ERROR = "30"
    LOST_CARD = "41"
    STOLEN_CARD = "43"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_CARD = "54"
    WRONG_PIN = "55"
    NOT_PERMITTED_TO_CARDHOLDER = "57"
    NOT_PERMITTED_TO_TERMINAL = "58"
    SUSPECTED_FRAUD = "59"
    AMOUNT_LIMIT = "61"
    RESTRICTED_CARD = "62"
    MAC_FAILED = "63"
    COUNT_LIMIT = "65"
    LATE_RESPONSE = "68"  # a reason in a reversal advice: the issuer's response came too late
    PIN_REQUIRED = "70"  # Visa's "PIN data required" (ISO 8583:1987 leaves 70 unassigned)
    PIN_TRIES_EXCEEDED = "75"
    CVV_FAILED = "82"
    ISSUER_UNAVAILABLE = "91"
    DUPLICATE = "94"
    RECONCILIATION_DIFFERS = "95"
    SYSTEM_ERROR = "96"
    CVV2_FAILED = "N7"

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    RC.APPROVED: "approved",
    RC.REFER_TO_ISSUER: "refer to card issuer",
    RC.INVALID_MERCHANT: "invalid merchant",
    RC.DO_NOT_HONOUR: "do not honour",
    RC.NOT_SUPPORTED: "MTI or processing code not supported",
    RC.INVALID_AMOUNT: "invalid amount",
    RC.INVALID_CARD: "invalid card number",
    RC.NO_ROUTE: "no route for this card (BIN)",
    RC.ORIGINAL_NOT_FOUND: "original transaction not found",
    RC.FORMAT_ERROR: "format error",
    RC.LOST_CARD: "lost card",
    RC.STOLEN_CARD: "stolen card",
    RC.INSUFFICIENT_FUNDS: "insufficient funds",
    RC.EXPIRED_CARD: "expired card",
    RC.WRONG_PIN: "wrong PIN",
    RC.NOT_PERMITTED_TO_CARDHOLDER: "transaction not permitted to cardholder",
    RC.NOT_PERMITTED_TO_TERMINAL: "terminal not permitted",
    RC.SUSPECTED_FRAUD: "suspected fraud",
    RC.AMOUNT_LIMIT: "exceeds amount limit",
    RC.RESTRICTED_CARD: "restricted card",
    RC.MAC_FAILED: "MAC verification failed",
    RC.COUNT_LIMIT: "exceeds frequency limit",
    RC.LATE_RESPONSE: "response received too late",
    RC.PIN_REQUIRED: "PIN data required",
    RC.PIN_TRIES_EXCEEDED: "PIN tries exceeded",
    RC.CVV_FAILED: "CVV or iCVV failed",
    RC.ISSUER_UNAVAILABLE: "issuer unavailable or timed out",
    RC.DUPLICATE: "duplicate transmission",
    RC.RECONCILIATION_DIFFERS: "reconciliation totals differ",
    RC.SYSTEM_ERROR: "system malfunction",
    RC.CVV2_FAILED: "CVV2 failed",
}


# By plain string: every transaction's log line asks, and an enum lookup by value costs more.
_BY_VALUE = {code.value: text for code, text in _MEANINGS.items()}


def meaning(code: str | None) -> str:
    """What a field 39 value means, for any value a peer may send."""
    if code is None:
        return "no response code"
    return _BY_VALUE.get(code, "unknown response code")


def described(code: str | None) -> str:
    """`"51 insufficient funds"`: a code as terminal output and log lines show it."""
    return f"{code} {meaning(code)}" if code is not None else meaning(code)
