"""argparse value types the tools' commands share, so a bad value is one argparse line (exit 2)."""

from __future__ import annotations

import argparse


def positive(text: str) -> int:
    """A count given on the command line (--entries, --lookups, --requests)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("expected a positive integer")
    return int(text)
