"""Does one example fit the model? [soft prompt, template with its text, a split label word's further tokens or
a generation target] must fit the model's positions (`prompted_forward.position_limit`): GPT-2, BERT and
RoBERTa fail with an IndexError past them, rotary models run on past the length they were trained on.

`fit_to_model` is the one check, asked by tuning, evaluation, comparison, transfer and the pipeline before any
work: settings that cannot fit are refused (a prompt that leaves no room for text; a --max-length the user gave
that does not fit beside the prompt), and a task's own default length that does not fit is lowered, with a
warning, so that long texts are cut at their end as `max_length` always cuts them.
"""

from __future__ import annotations

import dataclasses

from ..errors import PeftTransferError, warn_user
from ..prompted_forward import base_model_of, is_masked_lm, is_peft_model, position_limit, rotary_positions

# a text cut to its token budget may come out a few tokens longer once rendered in the template: harmless for
# rotary positions, an IndexError for learned ones, which therefore keep this margin
SAFETY_TOKENS = 4


def model_name(model) -> str:
    """How messages name `model`: its name or path, else its class."""
    base = base_model_of(model)
    return getattr(base, "name_or_path", "") or getattr(base.config, "_name_or_path", "") or type(base).__name__


def prompt_length(model) -> int:
    """Virtual tokens of `model`'s active soft prompt (0 for a model without one)."""
    if not is_peft_model(model):
        return 0
    return int(model.peft_config[model.active_adapter].num_virtual_tokens)


def fit_to_model(task, tokenizer, model, num_virtual_tokens: int, prompt: str = "", max_length_key: str | None = None,
                 given: bool = False):
    """`task`, its `max_length` lowered (with a warning) when `num_virtual_tokens` + `max_length` + the label or
    target tokens after the text would pass `model`'s positions; unchanged when it fits or the model names no
    limit. Refused instead: a prompt that leaves no room for any text (`prompt` names its length as the user set
    it, e.g. "--num-virtual-tokens 300"), and a `max_length` the user `given` with `max_length_key` that does not
    fit beside the prompt."""
    limit = position_limit(model)
    if limit is None:
        return task
    tokenized = task.tokenized(tokenizer, masked_lm=is_masked_lm(model))
    fixed, tail = tokenized.template_tokens, tokenized.tail_tokens
    margin = 0 if rotary_positions(model) else SAFETY_TOKENS
    room = limit - num_virtual_tokens - tail - margin  # the longest max_length that fits beside the prompt
    name = model_name(model)
    after = f" and {tail} label or target tokens after the text" if tail else ""
    if room <= fixed:
        most = limit - fixed - tail - margin - 1
        advice = f"use at most {most} virtual tokens" if most > 0 else "use a shorter template or another model"
        raise PeftTransferError(f"{prompt}: with the template's {fixed} tokens{after}, no text fits in the {limit} "
                                f"positions of the model {name}; {advice}.")
    if task.max_length <= room:
        return task
    if given:
        raise PeftTransferError(f"{max_length_key} {task.max_length} does not fit beside {prompt}{after} in the "
                                f"{limit} positions of the model {name}; use {max_length_key} {room} or less (or a "
                                "shorter prompt).")
    choose = f"; set {max_length_key} to choose" if max_length_key else ""
    warn_user(f"{prompt + after + ' and ' if num_virtual_tokens else ''}the {limit} positions of the model {name} "
              f"leave {room} tokens per example of task {task.name!r} (template included), fewer than its "
              f"{task.max_length}: longer texts are cut at their end{choose}.")
    return dataclasses.replace(task, max_length=room)
