"""The project's own error types.

Every error a user can cause ends up as one of these, so the CLI can print one line and exit 2
instead of a traceback. Their texts never carry card data: callers pass field numbers and
expectations, not values.
"""


class CardswitchError(Exception):
    """Base of every error the user can cause; the CLI prints its text and exits with
    `exit_code` (2, bad usage, unless a subclass says otherwise)."""

    exit_code = 2


class UsageError(CardswitchError):
    """A bad command-line argument or input value."""


class NoAnswer(CardswitchError):
    """The other end could not be reached or did not answer in time (connection refused or
    reset, timeout): the CLI prints one line and exits with 3."""

    exit_code = 3


class ConfigError(CardswitchError):
    """A bad config or data file: names the file, the key and what was expected."""

    def __init__(self, file: object, key: str, expected: str):
        super().__init__(f"{file}: {key}: {expected}")
        self.file = str(file)
        self.key = key
        self.expected = expected


class FramingError(CardswitchError):
    """The byte stream cannot be split into frames (a bad length, header or trailer); the
    connection must be closed."""
