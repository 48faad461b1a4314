"""Silence library warnings that do not concern a peft-transfer user, each by message, category and module
(never a blanket filter: any other warning still shows)."""

from __future__ import annotations

import warnings

# (message regex, category, module regex of the line the warning is attributed to)
_ALWAYS = [
    # peft reads `model.is_gradient_checkpointing`, deprecated in transformers 5 (nothing for the user to change)
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning, r"transformers\.modeling_utils"),
    # Opacus hooks the prompt encoder, whose input (token indices) needs no gradient; per-example gradients are
    # exact (tests/tune/test_per_example_gradients.py)
    (r"Full backward hook is firing when gradients are computed with respect to module outputs", UserWarning,
     r"(accelerate|torch|transformers|opacus)\."),
]
# the PRV accountant bounds its domain with RDP; the RDP order advice is about a bound it does not report; at a
# tiny σ its numbers overflow and it reports ε = inf (tune warns about such a σ before training, in one line)
_PRV = [(r"Optimal order is the (largest|smallest) alpha", UserWarning, r"opacus\.accountants\.analysis\.rdp"),
        (r"(overflow|invalid value|divide by zero) encountered", RuntimeWarning,
         r"opacus\.accountants\.analysis\.prv")]


def quiet_library_warnings(accountant: str | None = "prv") -> None:
    """Install the filters; the RDP-order advice only when the privacy accountant is not RDP itself."""
    for message, category, module in _ALWAYS + (_PRV if accountant != "rdp" else []):
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
