"""`precision`: where bfloat16 is chosen, and that the tuning and transfer trainers then really train under
autocast (the speed-up of benchmarks/results/precision.md) with a float32 prompt."""

import pytest
import torch
from datasets import Dataset
from tiny_models import make_model, make_tokenizer
from transfer_helpers import public_texts, saved_source_prompt

from peft_transfer import PeftTransferError, get_task
from peft_transfer import precision as precision_module
from peft_transfer.precision import precision_args, use_bf16
from peft_transfer.transfer.config import TransferConfig
from peft_transfer.transfer.run import transfer_prompt
from peft_transfer.transfer.trainer import PromptedLabelModel
from peft_transfer.tune import trainer as tune_trainer
from peft_transfer.tune.config import PrivatePromptConfig

TASK = get_task("rotten_tomatoes")
DATA = Dataset.from_dict({"text": ["a wonderful film", "a dull boring mess", "great", "the worst"] * 4,
                          "label": [1, 0, 1, 0] * 4})


def test_auto_follows_the_hardware_and_bad_values_are_refused(monkeypatch):
    assert use_bf16("bf16") and not use_bf16("fp32")
    for fast in (True, False):
        monkeypatch.setattr(precision_module, "fast_bf16", lambda fast=fast: fast)
        assert use_bf16("auto") is fast
    assert precision_args("bf16") == {"bf16": True, "use_cpu": not torch.cuda.is_available()}
    with pytest.raises(PeftTransferError, match="precision must be one of auto, bf16, fp32"):
        use_bf16("fp16")


def _autocast_seen(monkeypatch, cls) -> list[bool]:
    seen = []
    forward = cls.forward

    def spy(self, *args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu"))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(cls, "forward", spy)
    return seen


@pytest.mark.parametrize("epsilon", [None, 8.0])
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_tuning_trains_under_autocast_exactly_when_asked(tmp_path, monkeypatch, precision, epsilon):
    seen = _autocast_seen(monkeypatch, tune_trainer.PromptedTaskModel)
    args = PrivatePromptConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4,
                               target_epsilon=epsilon, disable_tqdm=True, save_strategy="no", learning_rate=0.05,
                               **precision_args(precision))
    trainer = tune_trainer.PrivatePromptTrainer(make_model("llama"), args, DATA, TASK, make_tokenizer())
    before = trainer.prompt_model.prompt_encoder["default"].embedding.weight.detach().clone()
    trainer.train()
    weight = trainer.prompt_model.prompt_encoder["default"].embedding.weight
    assert seen and all(s is (precision == "bf16") for s in seen), seen
    assert weight.dtype == torch.float32 and not torch.equal(weight, before)


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_transfer_trains_under_autocast_exactly_when_asked(tmp_path, monkeypatch, precision):
    tok = make_tokenizer()
    p_s, student, target = saved_source_prompt(tmp_path, tok, noise=0.3)
    seen = _autocast_seen(monkeypatch, PromptedLabelModel)
    args = TransferConfig(output_dir=str(tmp_path / "work"), max_steps=2, per_device_train_batch_size=4,
                          monitor_size=4, disable_tqdm=True, save_strategy="no", **precision_args(precision))
    p_t = transfer_prompt(p_s, student, target, tok, public_texts(16), args, task=TASK)
    assert any(seen) is (precision == "bf16")  # the cached student logits are computed before training, in fp32
    assert p_t.prompt_encoder["default"].embedding.weight.dtype == torch.float32
