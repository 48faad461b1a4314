"""`SequenceTransferTrainer`: POST when the task's answer spans several tokens - the transfer loss (Eq. 3-5,
full vocabulary, L1 and L2, α, T) at every position of a teacher-forced sequence after each public input.

Which sequence, for public texts that have no labels, is the task's choice (`tokenized.public_rows`):
- label words that split (`label_scoring`): each word's tokens, as the class scores read them (causal: the
  label position once, then each splitting word's later positions with its earlier tokens fed; masked: one
  row per word length, every mask). These are exactly the distributions the class scores depend on.
- generation: the continuation that student+p_s itself writes for the public input (greedy, up to the
  task's `max_new_tokens`, stop included). That continuation is what p_s makes the student produce, so it
  is where its behaviour shows; it is computed once (like the constant logits), needs no label, no private
  data, and no generation during training, whereas the target's own continuations would change as p_t trains
  (on-policy; a generation per step). All four models read the same tokens, so L2's "shift" compares like with
  like.

The three constant logit sets (student+p_s, student, target) are computed once per position and kept in
memory as float32 (3 x vocab floats per position: 0.6 MB for a 49k vocabulary, so 200 texts x 12 positions
take about 1.4 GB; use fewer public texts or `cache_constants=False`, which recomputes them every step).
The loss is the mean over all positions in the batch; the saved prompt is the last step's.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from peft import PeftModel
from tqdm.auto import tqdm
from transformers import Trainer

from ..errors import PeftTransferError
from ..prompted_forward import is_masked_lm, position_logits
from ..tasks.sequence_rows import SequenceRow, collate_rows
from .config import TransferConfig
from .loss import transfer_loss
from .monitor import TransferMonitor, monitor_count
from .public_logits import public_text_list
from .trainer import PromptedLabelModel, PromptTransferTrainer, check_transfer_inputs

logger = logging.getLogger(__name__)


@torch.no_grad()
def row_logits(model, rows: list[SequenceRow], pad_id: int, side: str, use_prompt: bool = True,
               batch_size: int = 16, desc: str | None = None) -> list[torch.Tensor]:
    """Full-vocabulary logits (len(positions), vocab) of each row, float32 on the CPU, in eval mode."""
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = []
    for start in tqdm(range(0, len(rows), batch_size), desc=desc, disable=desc is None, unit="batch"):
        part = rows[start : start + batch_size]
        batch = collate_rows(part, pad_id, side)
        logits = position_logits(model, batch["input_ids"], batch["attention_mask"], batch["positions"],
                                 use_prompt=use_prompt).float().cpu()
        out += [logits[i, : len(r.positions)] for i, r in enumerate(part)]
    model.train(was_training)
    return out


class PromptedPositionModel(PromptedLabelModel):
    """A PeftModel seen as `batch -> logits at the batch's positions (batch, P, vocab)`; inner model in eval mode."""

    def forward(self, input_ids, attention_mask, positions, use_prompt: bool = True, **_) -> torch.Tensor:
        return position_logits(self.prompt_model, input_ids, attention_mask, positions, use_prompt=use_prompt)


class SequenceRowDataset(torch.utils.data.Dataset):
    """Teacher-forced rows, each with its constants (positions, 3, vocab) when cached."""

    def __init__(self, rows: list[SequenceRow], constants: list[torch.Tensor] | None = None):
        self.rows, self.constants = rows, constants

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        item = {"row": self.rows[i]}
        if self.constants is not None:
            item["constants"] = self.constants[i]
        return item


class SequenceRowCollator:
    """Pad rows (`collate_rows`) and stack their constants in the order of the valid positions."""

    def __init__(self, pad_id: int, side: str):
        self.pad_id, self.side = pad_id, side

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = collate_rows([f["row"] for f in features], self.pad_id, self.side)
        if "constants" in features[0]:
            batch["constants"] = torch.cat([f["constants"] for f in features])
        return batch


class SequenceTransferMonitor(TransferMonitor):
    """`TransferMonitor` on held-out public rows: the transfer loss over their positions, and agreement with
    student+p_s on what the task compares (`tokenized.transfer_predictions`: the class for classification, the
    next token at each continuation position for generation)."""

    def __init__(self, tokenized, texts: list[str], rows: list[SequenceRow], constants: list[torch.Tensor],
                 student: PeftModel, alpha: float, temperature: float, every: int, batch_size: int = 16):
        self.tokenized, self.texts, self.rows = tokenized, texts, rows
        self.constants = torch.cat(constants) if constants else None
        self.alpha, self.temperature, self.every, self.batch_size = alpha, temperature, every, batch_size
        self.last: dict | None = None
        self.side = "right" if tokenized.masked_lm else "left"
        self._source = None
        if texts and self.constants is not None:
            self._source = tokenized.transfer_predictions(student, texts, self.constants[:, 0], batch_size)

    @torch.no_grad()
    def measure(self, model: torch.nn.Module) -> dict:
        prompt_model = model.prompt_model
        logits = torch.cat(row_logits(prompt_model, self.rows, self.tokenized.tokenizer.pad_token_id, self.side,
                                      batch_size=self.batch_size))
        sp, su, tu = self.constants.unbind(1)
        loss = transfer_loss(logits, sp, su, tu, self.alpha, self.temperature).item()
        ours = self.tokenized.transfer_predictions(prompt_model, self.texts, logits, self.batch_size)
        agreement = (ours == self._source).float().mean().item()
        return {"monitor_loss": loss, "monitor_agreement": agreement}


class SequenceTransferTrainer(PromptTransferTrainer):
    """Train the target's prompt p_t to copy student+p_s at every position of each public text's teacher-forced
    rows (see the module docstring). Arguments as `PromptTransferTrainer` (whose saving and resuming it keeps);
    no labelled data set is taken."""

    def __init__(self, model: PeftModel, student: PeftModel, args: TransferConfig, public_texts, task,
                 processing_class, callbacks: list | None = None):
        check_transfer_inputs(type(self).__name__, args, model, student)
        if args.loss_over != "vocab":
            raise PeftTransferError(f"loss_over {args.loss_over!r} needs label words of one token each; task "
                                    f"{task.name!r} is scored over several positions: use loss_over 'vocab'.")
        texts = public_text_list(public_texts, task.text_column)
        self.prompt_model, self.student, self.task = model, student, task
        self.tokenized = task.tokenized(processing_class, masked_lm=is_masked_lm(model))
        for p in student.parameters():
            p.requires_grad_(False)
        self.pad_id = processing_class.pad_token_id
        self.side = "right" if self.tokenized.masked_lm else "left"

        n_monitor = monitor_count(args.monitor_size, len(texts))
        order = np.random.default_rng(args.seed).permutation(len(texts))
        monitor_texts = [texts[i] for i in order[:n_monitor]]
        train_texts = [texts[i] for i in order[n_monitor:]]
        if not train_texts:
            raise PeftTransferError("The public set is too small: no texts left for training after the monitor's.")
        bs = args.cache_batch_size
        train_rows = [r for rows in self.tokenized.public_rows(train_texts, student, bs) for r in rows]
        monitor_rows = [r for rows in self.tokenized.public_rows(monitor_texts, student, bs) for r in rows]
        if not train_rows:
            raise PeftTransferError("No public text gave a sequence to distil on (empty continuations).")
        self.num_positions = sum(len(r.positions) for r in train_rows)
        logger.info("sequence transfer: %d rows, %d positions", len(train_rows), self.num_positions)
        train_constants = self._row_constants(train_rows, "train", bs) if args.cache_constants else None
        self.monitor = SequenceTransferMonitor(self.tokenized, monitor_texts, monitor_rows,
                                               self._row_constants(monitor_rows, "monitor", bs), student,
                                               args.alpha, args.temperature, args.monitor_steps, bs)
        self.num_train_texts = len(train_texts)
        Trainer.__init__(self, model=PromptedPositionModel(model), args=args,
                         train_dataset=SequenceRowDataset(train_rows, train_constants),
                         data_collator=SequenceRowCollator(self.pad_id, self.side), processing_class=processing_class,
                         callbacks=[self.monitor, *(callbacks or [])])

    def _row_constants(self, rows: list[SequenceRow], which: str, bs: int) -> list[torch.Tensor]:
        """(positions, 3, vocab) per row: student+p_s, student, target logits."""
        if not rows:
            return []
        sets = [row_logits(self.student, rows, self.pad_id, self.side, True, bs, f"caching student+p_s ({which})"),
                row_logits(self.student, rows, self.pad_id, self.side, False, bs, f"caching student ({which})"),
                row_logits(self.prompt_model, rows, self.pad_id, self.side, False, bs, f"caching target ({which})")]
        return [torch.stack(parts, dim=1) for parts in zip(*sets)]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        batch = (inputs["input_ids"], inputs["attention_mask"], inputs["positions"])
        valid = inputs["position_mask"]
        target_prompted = model(*batch)[valid]
        if "constants" in inputs:
            sp, su, tu = inputs["constants"].to(target_prompted.device).unbind(1)
        else:  # uncached: the three constant sets at every step
            with torch.no_grad():
                sp = position_logits(self.student, *batch)[valid]
                su = position_logits(self.student, *batch, use_prompt=False)[valid]
                tu = position_logits(self.prompt_model, *batch, use_prompt=False)[valid]
        loss = transfer_loss(target_prompted, sp, su, tu, self.args.alpha, self.args.temperature)
        return (loss, {"logits": target_prompted}) if return_outputs else loss
