"""The one exception type users see for bad input: its message says what is wrong and what to do."""

from __future__ import annotations

import warnings


class PeftTransferError(ValueError):
    """Bad input or state that the user can fix. The CLI prints the message alone, without a traceback."""


class PeftTransferWarning(UserWarning):
    """Input that is legal but likely a mistake (one class only, a labelled file as public text, a text close to
    the model's limit). Raised with `warn_user`; the CLI prints it as one line `peft-transfer CMD: warning: ...`."""


def warn_user(message: str) -> None:
    """Warn about a likely mistake in the user's input; the work goes on."""
    warnings.warn(message, PeftTransferWarning, stacklevel=2)
