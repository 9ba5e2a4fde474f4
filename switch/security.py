"""The PIN and card-verification stage of the pipeline, between routing and the issuer link.

The switch never sees a clear PIN or key: it hands LMK-encrypted keys and encrypted PIN blocks
to the HSM (in-process by default, or over TCP host commands) and acts on its answers. For each
routed request `CardSecurity.check()`:

1. checks, where the issuer asked for it ([issuers.verify]), the CVV in track 2 (field 35; the
   iCVV when the entry mode is chip, 05x) -> 82, and the CVV2 in field 48 tag 92 -> N7. Field 48
   is read in the layout of the listener's dialect (switch.wire.field48); where the CVV2 is
   checked, one that does not read is a format error (30), never a request without a CVV2;
2. translates field 52 from the terminal's TPK to the issuer's ZPK (CA), in the outgoing copy;
3. verifies the PIN on the issuer's behalf (IBM offset or PVV, from the card data the issuer
   shares) -> 55, and 75 once a card has had `max_pin_tries` wrong PINs in a row. One card's
   PIN checks run one at a time, so a burst of guesses cannot outrun the count.

An unreachable HSM, or one that does not answer within `[hsm] timeout_ms` for the whole stage,
gives 96; so does an HSM error (logged with command and error code only), except a terminal's
PIN block that holds no valid PIN, which is the request's fault and gives 30. Nothing secret is
logged: not the PIN block, the PIN, a CVV, nor any key.
"""

from __future__ import annotations

from typing import Callable

import attrs
import trio

from switch import logs
from switch.config import HsmConfig, IssuerConfig, ListenerConfig, SwitchConfig, VerifyConfig
from switch.core.codes import RC
from switch.core.context import CardChecked
from switch.core.messages import card_pan
from switch.core.states import State
from switch.errors import ConfigError
from switch.hsm.client import HsmError, HsmUnavailable, InProcessHsm, TcpHsm
from switch.hsm.cvv import CVV2_SERVICE_CODE, ICVV_SERVICE_CODE
from switch.hsm.validation import default_validation_data
from switch.hsm.keystore import Keystore
from switch.hsm.lmk import load_lmk
from switch.pintries import PinTries
from switch.wire.field48 import Field48, Layout
from switch.wire.masking import CVV2_TAG
from switch.wire.track2 import Track2
from switch.wire.message import Message

UNCHECKED = CardChecked()
TERMINAL_PIN_FORMAT = 0  # ISO 9564 format 0 from terminals
CHIP_ENTRY = "05"
HSM_PIN_BLOCK_INVALID = "20"  # payShield: "PIN block does not contain valid values"
# Declines that are not the card's fault; any other code is a card that failed a check.
DECLINE_STATES: dict[str, State] = {RC.SYSTEM_ERROR: State.FAILED, RC.FORMAT_ERROR: State.REJECTED}


@attrs.frozen
class Decline:
    code: str
    reason: str  # for the journal: what failed, never a value

    @property
    def state(self) -> State:
        """A system fault (96) failed, a malformed request (30) was rejected, a card that failed
        a check was declined."""
        return DECLINE_STATES.get(self.code, State.DECLINED)

    def checked(self) -> CardChecked:
        return CardChecked(decline=(self.code, self.state, self.reason))


def open_hsm(config: HsmConfig, source: str) -> InProcessHsm | TcpHsm:
    """The configured HSM client. In-process, the LMK is read here and the key store checked
    against it, so a wrong LMK or a damaged key store stops the switch at start-up."""
    if config.mode == "tcp":
        return TcpHsm(config.host, config.port, timeout=config.timeout, tls=config.tls)
    try:
        lmk = load_lmk(config.lmk_file)
    except (ValueError, OSError) as exc:
        raise ConfigError(source, "hsm.lmk_file", f"an LMK file, or $CARDSWITCH_LMK ({exc})") from None
    if config.keys_file is not None:
        Keystore.load(config.keys_file, lmk)
    return InProcessHsm(lmk)


class CardSecurity:
    """PIN translation and verification, CVV/iCVV/CVV2 checks, and PIN-try counting per card,
    with the switch's HSM client (`open_hsm`).

    Without an [hsm] section there is nothing to check with: `configured` is False, `config`
    and `hsm` are never set, and `check()` passes every request through unchecked. Everything
    past `_needed()` runs only when they are set."""

    config: HsmConfig
    hsm: InProcessHsm | TcpHsm

    def __init__(self, config: SwitchConfig, hsm: InProcessHsm | TcpHsm | None, pan_hash: Callable[[str], str],
                 tries: PinTries):
        self.configured = config.hsm is not None and hsm is not None
        if config.hsm is not None and hsm is not None:
            self.config = config.hsm
            self.hsm = hsm
        self._pan_hash = pan_hash
        self._tries = tries

    async def aclose(self) -> None:
        if self.configured:
            await self.hsm.aclose()

    def _needed(self, request: Message, listener: ListenerConfig, issuer: IssuerConfig) -> bool:
        has_pin_keys = "52" in request and (issuer.zpk or listener.tpk_for(request.get("41", "")))
        return self.configured and bool(has_pin_keys or issuer.verify)

    async def check(self, request: Message, listener: ListenerConfig, issuer: IssuerConfig) -> CardChecked:
        """A decline, or the PIN block under the issuer's ZPK (when there was one to translate)."""
        if not self._needed(request, listener, issuer):
            return UNCHECKED
        try:
            if self.config.mode != "tcp":  # computed here and now: nothing to wait for
                return await self._check(request, listener, issuer)
            with trio.fail_after(self.config.timeout):  # the network, the HSM's queue, a card's lock
                return await self._check(request, listener, issuer)
        except (HsmUnavailable, trio.TooSlowError) as exc:
            reason = str(exc) if isinstance(exc, HsmUnavailable) else f"no answer within {self.config.timeout}s"
            logs.warning("hsm_unavailable", issuer=issuer.name, mode=self.config.mode, reason=reason)
            return Decline(RC.SYSTEM_ERROR, "HSM unavailable").checked()
        except HsmError as exc:
            logs.warning("hsm_error", issuer=issuer.name, command=exc.command, code=exc.code)
            return Decline(RC.SYSTEM_ERROR, f"HSM error {exc.code} on {exc.command}").checked()

    async def _check(self, request: Message, listener: ListenerConfig, issuer: IssuerConfig) -> CardChecked:
        pan = card_pan(request) or ""
        verify = issuer.verify
        if verify is not None:
            declined = await self._card_values(request, pan, verify, listener.dialect.field48)
            if declined is not None:
                return declined.checked()
        if "52" not in request:
            return UNCHECKED
        tpk = listener.tpk_for(request.get("41", ""))
        zpk = issuer.zpk
        if tpk is None and zpk is None:
            return UNCHECKED  # no PIN keys on either side: the block travels as the terminal sent it
        if tpk is None or zpk is None:
            missing = "terminal's TPK" if tpk is None else "issuer's ZPK"
            return Decline(RC.SYSTEM_ERROR, f"PIN block but no {missing} configured").checked()
        try:
            pin_block = await self._translate_pin(request["52"], pan, tpk, zpk, issuer.pin_format)
        except HsmError as exc:
            if exc.code != HSM_PIN_BLOCK_INVALID:
                raise
            logs.warning("pin_block_invalid", issuer=issuer.name, command=exc.command, code=exc.code)
            return Decline(RC.FORMAT_ERROR, "PIN block from the terminal is not valid").checked()
        if verify is not None and verify.pin is not None:
            declined = await self._verify_pin(pin_block, pan, zpk, issuer.pin_format, verify)
            if declined is not None:
                return declined.checked()
        return CardChecked(pin_block=pin_block)

    async def _translate_pin(self, pin_block: str, pan: str, tpk: str, zpk: str, pin_format: int) -> str:
        """CA: the terminal's block under the issuer's ZPK.

        HSM error 20 here means the block the terminal sent holds no valid PIN block once
        deciphered (wrong key on the PIN pad, wrong format, damaged field 52). That is a fault in
        the request, not in the switch: the caller answers 30, DESIGN.md's format error for an
        undecodable field, rather than 96 (the HSM worked) or 55 (no PIN was ever compared, so
        the cardholder is not told their PIN is wrong and no PIN try is used up)."""
        keys = self.config.keys
        return await self.hsm.translate_pin_tpk_to_zpk(
            keys[tpk], keys[zpk], pin_block, pan, TERMINAL_PIN_FORMAT, pin_format)

    async def _card_values(self, request: Message, pan: str, verify: VerifyConfig,
                           field48: Layout) -> Decline | None:
        """CVV / iCVV from track 2 (82) and CVV2 from field 48 (N7), where configured and present;
        field 48 is read in the terminal's `field48` layout."""
        cvk = self.config.keys[verify.cvk] if verify.cvk else ""
        track2 = Track2.parse(request["35"]) if "35" in request else None
        if verify.cvv and "35" in request:
            chip = request.get("22", "").startswith(CHIP_ENTRY)
            if track2 is None or track2.cvv is None:
                return Decline(RC.CVV_FAILED, "track 2 without a CVV")
            service_code = ICVV_SERVICE_CODE if chip else track2.service_code
            if not await self.hsm.verify_cvv(cvk, track2.pan, track2.expiry, service_code, track2.cvv):
                return Decline(RC.CVV_FAILED, "iCVV failed" if chip else "CVV failed")
        if not verify.cvv2 or "48" not in request:
            return None
        parsed = Field48.parse(request["48"], field48)
        if parsed is None:
            return Decline(RC.FORMAT_ERROR, f"field 48: not {field48.value} TLV ({field48.shape})")
        found = parsed.values(CVV2_TAG)
        if len(found) > 1:  # which one would the issuer read? Not a question to answer with 00
            return Decline(RC.FORMAT_ERROR, "field 48: more than one CVV2 subelement (tag 92)")
        if not found:
            return None  # no CVV2 to check
        cvv2, expiry = found[0], request.get("14") or (track2.expiry if track2 else "")
        if not (cvv2.isascii() and cvv2.isdigit() and len(cvv2) == 3 and len(expiry) == 4) or not await self.hsm.verify_cvv(
                cvk, pan, expiry, CVV2_SERVICE_CODE, cvv2):
            return Decline(RC.CVV2_FAILED, "CVV2 failed")
        return None

    async def _verify_pin(self, pin_block: str, pan: str, zpk: str, pin_format: int,
                          verify: VerifyConfig) -> Decline | None:
        card_hash = self._pan_hash(pan)
        async with self._tries.held(card_hash):
            if not await self._tries.take(card_hash, verify.max_pin_tries):
                return Decline(RC.PIN_TRIES_EXCEEDED, "PIN tries exceeded earlier")
            try:
                verdict = await self._judge_pin(pin_block, pan, zpk, pin_format, verify)
            except BaseException:
                self._tries.give_back(card_hash)
                raise
            if isinstance(verdict, Decline):
                self._tries.give_back(card_hash)
                return verdict
            if verdict:
                self._tries.reset(card_hash)
                return None
            tries = self._tries.wrong(card_hash)
            if tries >= verify.max_pin_tries:
                return Decline(RC.PIN_TRIES_EXCEEDED, f"wrong PIN, {tries} in a row: tries exceeded")
            return Decline(RC.WRONG_PIN, f"wrong PIN ({tries} of {verify.max_pin_tries})")

    async def _judge_pin(self, pin_block: str, pan: str, zpk: str, pin_format: int,
                         verify: VerifyConfig) -> bool | Decline:
        """Whether the PIN is right. The configuration makes sure of the PVK and of each card's
        PVV or IBM offset for its method; a gap here is a system fault (96), named in the journal."""
        card = verify.cards.get(pan)
        if card is None:
            return Decline(RC.SYSTEM_ERROR, "no PIN verification data for this card")
        if verify.pvk is None:
            return Decline(RC.SYSTEM_ERROR, "no PVK configured")
        keys = self.config.keys
        if verify.pin == "pvv":
            if card.pvv is None:
                return Decline(RC.SYSTEM_ERROR, "no PVV for this card")
            correct = await self.hsm.verify_pin_pvv("zpk", keys[zpk], keys[verify.pvk], pin_block, pan,
                                                    pin_format, card.pvki, card.pvv)
        else:
            if card.ibm_offset is None:
                return Decline(RC.SYSTEM_ERROR, "no IBM offset for this card")
            correct = await self.hsm.verify_pin_ibm("zpk", keys[zpk], keys[verify.pvk], pin_block, pan,
                                                    pin_format, card.ibm_offset,
                                                    card.validation_data or default_validation_data(pan),
                                                    verify.dectab, card.pin_length)
        return bool(correct)
