"""Shared set-up for the transfer tests: a student with a tuned prompt p_s, a related target, public texts."""

from __future__ import annotations

import random

import torch
from tiny_models import CORPUS, make_model

from peft_transfer import create_prompt_model, get_task, label_logits, save_prompt

POSITIVE = ("great", "good", "wonderful", "best", "moving")
NEGATIVE = ("dull", "boring", "bad", "worst", "terrible")
WORDS = sorted(set(" ".join(CORPUS[:10]).replace(",", " ").replace("\n", " ").split()))


def public_texts(n: int = 64, seed: int = 0) -> list[str]:
    """Random word mixes from the tiny corpus: unlabelled 'public' text."""
    r = random.Random(seed)
    return [" ".join(r.choice(WORDS) for _ in range(r.randint(3, 9))) for _ in range(n)]


def labelled_texts(n: int = 48, seed: int = 1) -> tuple[list[str], list[int]]:
    """A tiny 'private' sentiment set: the label says which word list the text draws from."""
    r = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        pool = POSITIVE if label else NEGATIVE
        texts.append(" ".join([r.choice(pool), *(r.choice(WORDS) for _ in range(r.randint(2, 5))), r.choice(pool)]))
        labels.append(label)
    return texts, labels


def related_models(arch: str = "llama", noise: float = 1.0, seed: int = 0, sharpen: float = 10.0):
    """(student, target): same architecture, the target a noisy copy of the student (a stand-in for a
    distilled pair), logits sharpened so the label words matter."""
    student = make_model(arch, 2, seed=seed)
    target = make_model(arch, 2, seed=seed)
    torch.manual_seed(seed + 100)
    with torch.no_grad():
        for p in target.parameters():
            p.add_(torch.randn_like(p) * noise * p.std().clamp(min=1e-3))
        for model in (student, target):  # random tiny models give near-uniform logits; make them peaked
            head = model.get_output_embeddings()
            if head.weight is model.get_input_embeddings().weight:
                model.config.tie_word_embeddings = False
                head.weight = torch.nn.Parameter(head.weight.detach().clone())
            head.weight.mul_(sharpen)
    target.name_or_path = target.config._name_or_path = f"tiny-{arch}-target"
    return student, target


def tune_source_prompt(student, tokenizer, steps: int = 30, lr: float = 0.3, n_virtual: int = 4):
    """A few manual Adam steps of prompt tuning on the tiny labelled set (stands in for stage 2)."""
    from peft_transfer.prompted_forward import is_masked_lm

    task = get_task("rotten_tomatoes")
    model = create_prompt_model(student, tokenizer, task, num_virtual_tokens=n_virtual)
    tokenized = task.tokenized(tokenizer, masked_lm=is_masked_lm(student))
    texts, labels = labelled_texts()
    batch = tokenized.encode(texts)
    y = torch.tensor(labels)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    model.eval()
    for _ in range(steps):
        scores = tokenized.class_scores(label_logits(model, **batch))
        loss = torch.nn.functional.cross_entropy(scores, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def saved_source_prompt(tmp_path, tokenizer, arch: str = "llama", **kwargs):
    """Tune p_s on a fresh student, save it; return (folder, fresh student, target)."""
    student, target = related_models(arch, **kwargs)
    p_s = tune_source_prompt(student, tokenizer)
    folder = str(tmp_path / "source")
    save_prompt(p_s, folder)
    fresh_student, _ = related_models(arch, **kwargs)
    return folder, fresh_student, target


def p_s_accuracy(model, tokenizer) -> float:
    from peft_transfer.prompted_forward import is_masked_lm

    tokenized = get_task("rotten_tomatoes").tokenized(tokenizer, masked_lm=is_masked_lm(model))
    texts, labels = labelled_texts()
    with torch.no_grad():
        pred = tokenized.class_scores(label_logits(model, **tokenized.encode(texts))).argmax(-1)
    return (pred == torch.tensor(labels)).float().mean().item()
