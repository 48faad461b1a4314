"""Templates as the user types them: `\\n` and `\\t` mean a newline and a tab, wherever the template comes from.

A shell keeps `'Review: {text}\\nSentiment:'` as a backslash and an n, and so does YAML in single quotes or
unquoted, while YAML in double quotes turns it into a newline: the same template would mean two inputs. The
`--template` flags and the pipeline's `tasks[i].template` both go through `typed_template`, so a typed `\\n` is
always a newline (`\\\\` is one backslash, any other backslash stays as typed).
"""

from __future__ import annotations

import re

ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}
_ESCAPE = re.compile(r"\\([nt\\])")


def typed_template(text: str) -> str:
    """`text` with the escapes `\\n`, `\\t` and `\\\\` turned into a newline, a tab and one backslash."""
    return _ESCAPE.sub(lambda m: ESCAPES[m.group(1)], text)
