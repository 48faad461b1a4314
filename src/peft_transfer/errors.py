"""The one exception type users see for bad input: its message says what is wrong and what to do."""

from __future__ import annotations


class PeftTransferError(ValueError):
    """Bad input or state that the user can fix. The CLI prints the message alone, without a traceback."""
