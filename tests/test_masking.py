"""`mask_pan_like`: whatever field a value came in, no PAN-like digit run leaves in a log line or
a journal row (properties), and `decode` shows none."""

from __future__ import annotations

import re

from hypothesis import assume, given
from hypothesis import strategies as st

from switch.wire.luhn import luhn_check_digit, luhn_valid, valid_windows
from switch.wire import masking
from switch.wire.masking import mask_pan_like, masked_value

DIGITS = "0123456789"


def pan_like_runs(text: str) -> list[str]:
    """Every window of 13 to 19 consecutive digits in `text` that passes the Luhn check."""
    found = []
    for run in re.findall(r"[0-9]+", text):
        for length in range(13, min(19, len(run)) + 1):
            found += [run[i:i + length] for i in range(len(run) - length + 1) if luhn_valid(run[i:i + length])]
    return found


@st.composite
def pans(draw) -> str:
    body = draw(st.text(DIGITS, min_size=12, max_size=18))
    return body + luhn_check_digit(body)


texts = st.text(st.characters(codec="utf-8"), max_size=30)


@given(texts, pans(), texts)
def test_an_embedded_pan_is_masked_and_the_length_kept(before, pan, after):
    text = before + pan + after
    masked = mask_pan_like(text)
    assert len(masked) == len(text)
    assert pan_like_runs(masked) == []
    assert pan not in masked


@given(texts, pans(), texts, pans(), texts)
def test_every_pan_is_masked_even_next_to_other_digits(a, first, b, second, c):
    masked = mask_pan_like(a + first + b + second + c)
    assert pan_like_runs(masked) == [] and first not in masked and second not in masked


@given(st.text(DIGITS, min_size=13, max_size=19), st.sampled_from(["", "x", " ", "=", "RRN "]))
def test_digit_runs_that_hold_no_pan_stay(run, around):
    assume(pan_like_runs(run) == [])  # Luhn-invalid as a whole and in every 13-19 digit window
    text = around + run + around
    assert mask_pan_like(text) == text


@given(texts)
def test_text_without_13_digits_in_a_row_stays(text):
    assume(re.search(r"[0-9]{13}", text) is None)
    assert mask_pan_like(text) is text or mask_pan_like(text) == text


@given(st.text(DIGITS, min_size=13, max_size=19), pans())
def test_what_is_remembered_as_unmasked_never_holds_a_pan(run, pan):
    """Texts checked and found clean are remembered (a merchant id comes with every request);
    one that held a PAN is never among them, and is masked again each time it comes."""
    for text in (f"M{run}", f"M{pan}", f"M{run}", f"M{pan}"):
        masked = mask_pan_like(text)
        assert pan_like_runs(masked) == []
    assert all(pan_like_runs(text) == [] for text in masking._UNMASKED)


def test_the_remembered_texts_are_bounded():
    for number in range(masking.UNMASKED_KEPT + 50):
        text = f"M{number:014d}"
        assert mask_pan_like(text) == mask_pan_like(text)
        assert len(masking._UNMASKED) <= masking.UNMASKED_KEPT


@given(st.text(DIGITS, max_size=45))
def test_the_windows_found_are_exactly_the_luhn_valid_ones(run):
    assert valid_windows(run, 13, 19) == [(offset, length) for length in range(13, min(19, len(run)) + 1)
                                          for offset in range(len(run) - length + 1)
                                          if luhn_valid(run[offset:offset + length])]


def test_the_first_six_and_last_four_stay():
    assert mask_pan_like(None) is None and mask_pan_like("") == ""  # an absent field stays absent
    assert mask_pan_like("4761730000000011") == "476173******0011"
    assert mask_pan_like("RRN 4761730000000011=3012101") == "RRN 476173******0011=3012101"
    assert mask_pan_like("1234567890123") == "1234567890123"  # Luhn-invalid


def test_every_field_shown_is_masked_for_pans():
    assert masked_value("43", "SHOP 4761730000000011 CITY") == "SHOP 476173******0011 CITY"
    assert masked_value("42", "X12345678901234") == "X12345678901234"  # no Luhn-valid window
    assert masked_value("37", "476173000000") == "476173000000"  # 12 characters cannot hold a PAN


def textbook_check_digit(partial: str) -> str:
    """ISO/IEC 7812-1 as written: from the right, double every other digit, add the digits."""
    total = 0
    for position, char in enumerate(reversed(partial)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit // 10 + digit % 10
    return str((10 - total % 10) % 10)


@given(st.text(DIGITS, min_size=1, max_size=40))
def test_the_luhn_check_digit_is_the_textbook_one(partial):
    assert luhn_check_digit(partial) == textbook_check_digit(partial)
    assert luhn_valid(partial + textbook_check_digit(partial))
    assert not luhn_valid(partial + str((int(textbook_check_digit(partial)) + 1) % 10))


def test_published_card_numbers_pass_luhn():
    for pan in ("4111111111111111", "5500005555555559", "378282246310005", "6011000990139424"):
        assert luhn_valid(pan)
    assert not luhn_valid("4111111111111112") and not luhn_valid("41111a1111111111") and not luhn_valid("4")
