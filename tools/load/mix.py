"""The transaction mix: which card, amount and kind each load-generator operation uses.

Cards come from issuer emulator files (the demo's by default), sorted by what they will do:
approve cards (active, in date, no fault, a balance; those without a daily limit first, since a
limit ends approvals mid-run), insufficient-funds cards for declines (amount above the balance),
and no-reply cards for timeouts. Amounts are one minor unit so balances last for millions of
approvals. Operations are drawn from the weights with a seeded RNG, so a run is repeatable.
"""

from __future__ import annotations

import datetime
import inspect
import random
from pathlib import Path

import attrs

from emulators.bank import NO_FAULT, Account
from emulators.issuer import load_issuer_file
from emulators.network import DEMO_DIR, demo_issuer_files
from emulators.terminal import Terminal
from switch.errors import UsageError

KINDS = ("purchase", "pin", "decline", "reversal", "timeout")
DEFAULT_MIX = "purchase=60,pin=20,decline=10,reversal=10"
APPROVE_MIN_BALANCE = 10_000
DEFAULT_PIN = "1234"
# The terminal emulator builds field 52 from a clear PIN once card_request() takes `pin=`.
PIN_SUPPORTED = "pin" in inspect.signature(Terminal.card_request).parameters
DEMO_KEYS = DEMO_DIR / "keys.toml"
DEMO_LMK = DEMO_DIR / "lmk-insecure.txt"
DEMO_TPK = "tpk.demo"


def terminal_pin_key(keys: Path = DEMO_KEYS, lmk_file: Path = DEMO_LMK, tpk: str = DEMO_TPK):
    """The terminals' PIN key (a TPK in a key store) for PIN purchases; None while the terminal
    emulator cannot make PIN blocks."""
    if not PIN_SUPPORTED:
        return None
    from emulators.terminal import PinKey
    from switch.hsm.keystore import Keystore
    from switch.hsm.lmk import load_lmk

    try:
        keystore = Keystore.load(keys, load_lmk(lmk_file))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--keys/--lmk-file: cannot load the PIN key store: {exc}") from None
    if tpk not in keystore:
        raise UsageError(f"--tpk: no key {tpk!r} in {keys}")
    return PinKey(keystore, tpk)


@attrs.frozen
class Card:
    pan: str
    expiry: str
    issuer: str
    pin: str = DEFAULT_PIN
    balance: int = 0
    daily_limit: int | None = None


@attrs.frozen
class Operation:
    """One unit of work: `reversal` sends a purchase and then reverses it (two requests)."""

    kind: str
    card: Card
    amount: int


def parse_weights(text: str) -> dict[str, int]:
    """`purchase=60,pin=20,...` -> {kind: weight}; a bad entry is a one-line usage error."""
    weights: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, weight = part.partition("=")
        if kind not in KINDS or not weight.isdigit():
            raise UsageError(f"--mix: expected KIND=WEIGHT with KIND one of {', '.join(KINDS)}, got {part!r}")
        weights[kind] = int(weight)
    if not any(weights.values()):
        raise UsageError("--mix: at least one kind needs a weight above 0")
    return weights


def _in_date(account: Account) -> bool:
    today = datetime.date.today()
    return account.expiry >= f"{today.year % 100:02d}{today.month:02d}"


def _card(account: Account, issuer: str) -> Card:
    return Card(pan=account.pan, expiry=account.expiry, issuer=issuer,
                pin=str(account.extra.get("pin", DEFAULT_PIN)), balance=account.balance,
                daily_limit=account.daily_limit)


def cards_by_kind(issuer_files: list[Path] | None = None) -> dict[str, list[Card]]:
    """Usable cards for each kind from issuer files (default: the demo network's)."""
    approve: list[Card] = []
    limited: list[Card] = []
    decline: list[Card] = []
    timeout: list[Card] = []
    for path in issuer_files or demo_issuer_files():
        config, bank = load_issuer_file(path)
        for account in bank.accounts.values():
            card = _card(account, config.name)
            if account.fault.action == "no_reply":
                timeout.append(card)
            elif account.status != "active" or not _in_date(account) or account.fault != NO_FAULT:
                continue
            elif account.balance >= APPROVE_MIN_BALANCE:
                (approve if account.daily_limit is None else limited).append(card)
            else:
                decline.append(card)
    approve = approve or limited
    return {"purchase": approve, "pin": approve, "reversal": approve, "decline": decline, "timeout": timeout}


class Mix:
    """Draws operations by weight; kinds without cards or support are dropped with a note."""

    def __init__(self, weights: dict[str, int], cards: dict[str, list[Card]], seed: int = 8583):
        self.notes: list[str] = []
        usable = {}
        for kind, weight in weights.items():
            if weight <= 0:
                continue
            if kind == "pin" and not PIN_SUPPORTED:
                self.notes.append("pin purchases off: the terminal emulator has no card_request(pin=) yet")
            elif not cards.get(kind):
                self.notes.append(f"{kind} off: no suitable card in the issuer files")
            else:
                usable[kind] = weight
        if not usable:
            raise UsageError("--mix: no kind in the mix has a usable card")
        self.kinds = list(usable)
        self.weights = [usable[kind] for kind in self.kinds]
        self.cards = cards
        self.random = random.Random(seed)
        if any(card.daily_limit for kind in self.kinds for card in cards[kind] if kind != "decline"):
            self.notes.append("some approve cards have a daily limit: long runs may turn approvals into 61")

    def next(self) -> Operation:
        kind = self.random.choices(self.kinds, self.weights)[0]
        card = self.random.choice(self.cards[kind])
        amount = card.balance + 100 if kind == "decline" else 1
        return Operation(kind, card, amount)
