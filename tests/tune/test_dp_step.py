"""One DP-SGD step of PrivatePromptTrainer, by hand: the update is the clipped per-example gradients summed,
plus N(0, σ²C²) noise, divided by the expected batch size B, on empty and non-empty Poisson batches."""

import pytest
import torch
from datasets import Dataset
from tiny_models import make_model, make_tokenizer

from peft_transfer import get_task
from peft_transfer.tune.config import PrivatePromptConfig
from peft_transfer.tune.trainer import PrivatePromptTrainer

TASK = get_task("rotten_tomatoes")
TEXTS = ["a great film", "a dull and boring mess of a movie, terrible and long", "good", "bad bad bad",
         "the team won the cup final after a long and tiring season", "fine"]
LABELS = [1, 0, 1, 0, 1, 0]
B, CLIP, SIGMA = 4, 0.4, 2.0  # expected batch 4 (the real batch below has 6); the clip binds for some examples


def _trainer(tmp_path):
    data = Dataset.from_dict({"text": TEXTS * 2, "label": LABELS * 2})
    args = PrivatePromptConfig(output_dir=str(tmp_path), noise_multiplier=SIGMA, max_grad_norm=CLIP,
                               per_device_train_batch_size=B, num_virtual_tokens=4, optim="sgd", learning_rate=1.0,
                               weight_decay=0.0, max_steps=1, disable_tqdm=True, noise_seed=11)
    with pytest.warns(UserWarning, match="noise_seed"):
        trainer = PrivatePromptTrainer(make_model("llama"), args, data, TASK, make_tokenizer())
    trainer.create_optimizer()
    return trainer


def _clipped_mean_by_hand(trainer) -> torch.Tensor:
    """Σ_i g_i · min(1, C / ‖g_i‖) / B, with g_i from one example at a time (plain autograd, no Opacus)."""
    weight = trainer.prompt_model.prompt_encoder["default"].embedding.weight
    grads = []
    for text, label in zip(TEXTS, LABELS):
        batch = trainer.data_collator([{"text": text, "label": label}])
        loss = trainer.example_losses(trainer.model.train(), batch).sum()
        grads.append(torch.autograd.grad(loss, weight)[0])
    norms = [g.norm().item() for g in grads]
    assert min(norms) < CLIP < max(norms)  # clipping binds for some examples and not for others
    return sum(g * min(1.0, CLIP / (n + 1e-6)) for g, n in zip(grads, norms)) / B  # Opacus's clip factor


def _step(trainer, rows) -> torch.Tensor:
    """Run training_step + optimizer.step from the same starting prompt; the update (lr 1, plain SGD)."""
    weight = trainer.prompt_model.prompt_encoder["default"].embedding.weight
    start = weight.detach().clone()
    trainer.training_step(trainer.model, trainer.data_collator(rows))
    trainer.optimizer.step()
    update = (start - weight).detach().clone()
    with torch.no_grad():
        weight.copy_(start)
    return update


def test_update_without_noise_is_the_clipped_mean_step(tmp_path):
    trainer = _trainer(tmp_path)
    expected = _clipped_mean_by_hand(trainer)
    trainer.dp_optimizer.noise_multiplier = 0.0
    update = _step(trainer, [{"text": t, "label": y} for t, y in zip(TEXTS, LABELS)])
    torch.testing.assert_close(update, expected, rtol=1e-4, atol=1e-7)
    assert trainer.accountant.history == [(0.0, B / 12, 1)]


@pytest.mark.parametrize("empty", [False, True])
def test_noise_of_the_mean_gradient_has_std_sigma_clip_over_batch(tmp_path, empty):
    trainer = _trainer(tmp_path)
    rows = [] if empty else [{"text": t, "label": y} for t, y in zip(TEXTS, LABELS)]
    signal = torch.zeros(()) if empty else _clipped_mean_by_hand(trainer)
    noise = torch.stack([_step(trainer, rows) - signal for _ in range(40)])  # 40 steps x 128 coordinates
    expected = SIGMA * CLIP / B
    assert noise.std().item() == pytest.approx(expected, rel=0.05)
    assert abs(noise.mean().item()) < 4 * expected / noise.numel() ** 0.5
    assert not torch.allclose(noise[0], noise[1])  # fresh noise at every step
    assert trainer.accountant.history == [(SIGMA, B / 12, 40)]  # every step accounted, the empty ones too
