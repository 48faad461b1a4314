"""Opacus's per-example (and clipped, summed) prompt gradients equal a one-example-at-a-time loop."""

import pytest
import torch
from datasets import Dataset
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from tiny_models import make_model, make_tokenizer

from peft_transfer import create_prompt_model, get_task, label_logits
from peft_transfer.prompted_forward import is_masked_lm
from peft_transfer.tasks.classification import LabelledTextCollator
from peft_transfer.tune.config import PrivatePromptConfig
from peft_transfer.tune.trainer import PrivatePromptTrainer, PromptedTaskModel

ARCHS = ["llama", "gemma3", "qwen2", "gpt2", "roberta"]
# different lengths, so the batch is padded
TEXTS = ["a great film", "a dull and boring mess of a movie, terrible and long", "good", "bad bad bad",
         "the team won the cup final after a long and tiring season", "fine"]
LABELS = [1, 0, 1, 0, 1, 0]
N_VIRTUAL = 4


def _setup(arch):
    tok = make_tokenizer()
    task = get_task("rotten_tomatoes")
    pm = create_prompt_model(make_model(arch), tok, task, num_virtual_tokens=N_VIRTUAL)
    weight = pm.prompt_encoder["default"].embedding.weight
    with torch.no_grad():
        weight.add_(torch.randn_like(weight, generator=torch.Generator().manual_seed(1)) * 0.5)
    tokenized = task.tokenized(tok, masked_lm=is_masked_lm(pm))
    clf = PromptedTaskModel(pm, tokenized).train()
    return clf, LabelledTextCollator(tokenized), weight


def _loop_gradients(clf, collate, weight) -> torch.Tensor:
    """Reference: each example alone (no padding), plain autograd."""
    grads = []
    for text, label in zip(TEXTS, LABELS):
        weight.grad = None
        batch = collate([{"text": text, "label": label}])
        scores = clf(**batch)
        torch.nn.functional.cross_entropy(scores, batch["labels"], reduction="sum").backward()
        grads.append(weight.grad.detach().clone())
    weight.grad = None
    return torch.stack(grads)


def _clipped_sum(per_example: torch.Tensor, clip: float) -> torch.Tensor:
    norms = per_example.flatten(1).norm(dim=1)
    factors = (clip / (norms + 1e-6)).clamp(max=1.0)  # Opacus's formula
    return torch.einsum("i,i...", factors, per_example)


@pytest.mark.parametrize("mode", ["hooks", "functorch"])
@pytest.mark.parametrize("arch", ARCHS)
def test_opacus_per_example_gradients_are_exact(arch, mode):
    clf, collate, weight = _setup(arch)
    reference = _loop_gradients(clf, collate, weight)
    scale = reference.abs().max().item()
    assert scale > 1e-5  # the test means something

    gsm = GradSampleModule(clf.prompt_encoder, loss_reduction="sum", force_functorch=mode == "functorch")
    batch = collate([{"text": t, "label": y} for t, y in zip(TEXTS, LABELS)])
    assert (batch["attention_mask"] == 0).any()  # padded
    scores = clf(**batch)
    torch.nn.functional.cross_entropy(scores, batch["labels"], reduction="sum").backward()
    per_example = weight.grad_sample
    assert per_example.shape == (len(TEXTS), *weight.shape)
    diff = (per_example - reference).abs().max().item()
    assert diff <= 1e-6 and diff <= 1e-3 * scale, (diff, scale)

    clip = float(reference.flatten(1).norm(dim=1).median())  # clipping active for about half the examples
    dp = DPOptimizer(torch.optim.SGD([weight], lr=0.0), noise_multiplier=0.0, max_grad_norm=clip,
                     expected_batch_size=len(TEXTS), loss_reduction="sum")
    dp.clip_and_accumulate()
    expected = _clipped_sum(reference, clip)
    diff = (weight.summed_grad - expected).abs().max().item()
    assert diff <= 1e-6 and diff <= 1e-3 * expected.abs().max().item(), diff
    gsm._close()


@pytest.mark.parametrize("arch", ["llama", "gpt2", "roberta"])
def test_per_example_gradients_stay_exact_under_bf16_autocast(arch):
    """`precision` bf16 trains under autocast: Opacus's per-example gradients are still those of the same
    computation one example at a time, and stay float32 tensors (what DP clips and adds noise to)."""
    clf, collate, weight = _setup(arch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = _loop_gradients(clf, collate, weight)
        gsm = GradSampleModule(clf.prompt_encoder, loss_reduction="sum")
        batch = collate([{"text": t, "label": y} for t, y in zip(TEXTS, LABELS)])
        scores = clf(**batch)
        torch.nn.functional.cross_entropy(scores.float(), batch["labels"], reduction="sum").backward()
    per_example = weight.grad_sample
    assert weight.dtype == per_example.dtype == torch.float32
    scale = reference.abs().max().item()
    assert scale > 1e-5
    # bfloat16 keeps 8 bits of mantissa: the batch and the loop round differently, never by more than a few %
    assert (per_example - reference).abs().max().item() <= 5e-2 * scale
    cos = torch.nn.functional.cosine_similarity(per_example.flatten(1), reference.flatten(1), dim=1)
    assert cos.min().item() > 0.99, cos
    gsm._close()


@pytest.mark.parametrize("arch", ["llama", "roberta"])
def test_trainer_step_with_micro_batches_clips_each_example(arch, tmp_path):
    """PrivatePromptTrainer.training_step in micro-batches of 4 and 2 leaves the exact clipped sum."""
    clf, collate, weight = _setup(arch)
    reference = _loop_gradients(clf, collate, weight)
    clip = float(reference.flatten(1).norm(dim=1).median())
    data = Dataset.from_dict({"text": TEXTS, "label": LABELS})
    sums = []
    for physical in (4, 2):
        args = PrivatePromptConfig(output_dir=str(tmp_path / str(physical)), noise_multiplier=1.0, max_grad_norm=clip,
                                   per_device_train_batch_size=2, physical_batch_size=physical, max_steps=1,
                                   disable_tqdm=True)
        trainer = PrivatePromptTrainer(clf.prompt_model, args, data, get_task("rotten_tomatoes"), make_tokenizer())
        trainer.create_optimizer()
        trainer.training_step(trainer.model, collate([{"text": t, "label": y} for t, y in zip(TEXTS, LABELS)]))
        trainer.dp_optimizer.clip_and_accumulate()
        sums.append(weight.summed_grad.clone())
        trainer.dp_optimizer.zero_grad(set_to_none=True)
        trainer.grad_sampler._close()
    for got in sums:
        assert (got - _clipped_sum(reference, clip)).abs().max().item() <= 1e-6


def test_stock_peft_repeated_prompt_gives_wrong_per_example_gradients():
    """PEFT's get_prompt embeds one prompt row and repeats it: Opacus then sees a batch of 1."""
    clf, collate, weight = _setup("llama")
    reference = _loop_gradients(clf, collate, weight)
    gsm = GradSampleModule(clf.prompt_encoder, loss_reduction="sum")
    batch = collate([{"text": t, "label": y} for t, y in zip(TEXTS, LABELS)])
    prompt = clf.prompt_model.get_prompt(batch_size=len(TEXTS))
    logits = label_logits(clf.prompt_model, batch["input_ids"], batch["attention_mask"], batch["label_positions"],
                          prompt=prompt)
    torch.nn.functional.cross_entropy(clf.tokenized.class_scores(logits), batch["labels"], reduction="sum").backward()
    stock = weight.grad_sample
    assert stock.shape[0] != len(TEXTS) or (stock - reference).abs().max() > 1e-4
    gsm._close()
