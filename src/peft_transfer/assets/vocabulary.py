"""Is it the same tokenizer? Two tokenizers agree when they map every token to the same id and name the same
special tokens; the vocabulary size alone says little (two unrelated 32k vocabularies have the same size).

`vocabulary_fingerprint` is what a prompt records of the tokenizer it was tuned with (cheap: one hash of the
token -> id mapping), `vocabulary_difference` says in words how two tokenizers differ, and
`check_same_tokenizer` refuses two models that must share a tokenizer (student and target) but do not.
"""

from __future__ import annotations

import hashlib
import json

from ..errors import PeftTransferError

_SPECIAL = ("bos_token", "eos_token", "unk_token")


def _special_tokens(tokenizer) -> dict[str, str | None]:
    return {name: str(token) if (token := getattr(tokenizer, name, None)) is not None else None for name in _SPECIAL}


def vocabulary_fingerprint(tokenizer) -> str:
    """"<N> tokens, sha256:<16 hex>" over the token -> id mapping and the bos/eos/unk tokens: two tokenizers with
    the same fingerprint turn a text into the same ids."""
    vocab = tokenizer.get_vocab()
    data = json.dumps([sorted(vocab.items()), _special_tokens(tokenizer)], ensure_ascii=False)
    return f"{len(vocab)} tokens, sha256:{hashlib.sha256(data.encode()).hexdigest()[:16]}"


def vocabulary_difference(a, b) -> str | None:
    """How tokenizer `b` differs from `a` in words (None: the same mapping and special tokens)."""
    mine, theirs = a.get_vocab(), b.get_vocab()
    if len(mine) != len(theirs):
        return f"{len(mine)} vs {len(theirs)} tokens"
    differ = sorted(t for t, i in mine.items() if theirs.get(t) != i)
    if differ:
        return (f"both have {len(mine)} tokens, but {len(differ)} of them map to other ids or are missing "
                f"(e.g. {differ[0]!r})")
    special_a, special_b = _special_tokens(a), _special_tokens(b)
    changed = [f"{name} {special_a[name]!r} vs {special_b[name]!r}" for name in _SPECIAL
               if special_a[name] != special_b[name]]
    return f"other special tokens ({', '.join(changed)})" if changed else None


def check_same_tokenizer(a, b, a_name: str, b_name: str, advice: str) -> None:
    """Refuse two tokenizers that must be one (`a_name`, `b_name`: how the user named the models)."""
    difference = vocabulary_difference(a, b)
    if difference is not None:
        raise PeftTransferError(f"{a_name} and {b_name} have different tokenizers ({difference}): {advice}")
