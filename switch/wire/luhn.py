"""The Luhn (mod 10) check digit of card numbers (ISO/IEC 7812-1)."""


def luhn_check_digit(partial: str) -> str:
    """The digit that makes `partial` + digit pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(partial)):
        digit = int(char)
        if position % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str(-total % 10)


def luhn_valid(pan: str) -> bool:
    return pan.isdigit() and len(pan) > 1 and luhn_check_digit(pan[:-1]) == pan[-1]
