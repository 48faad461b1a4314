"""Label words of several tokens: length-normalised log-likelihood class scores on every architecture, equal to
stock PEFT one word at a time, batch invariant, exact per-example gradients under Opacus; single-token tasks
keep their numbers."""

import pytest
import torch
from opacus import GradSampleModule
from tiny_models import ALL_ARCHS, MASKED_ARCHS, make_model, make_tokenizer

from peft_transfer import ClassificationTask, create_prompt_model, get_task, label_logits
from peft_transfer.tasks.label_scoring import class_scores, label_scorer
from peft_transfer.tune.trainer import PromptedTaskModel

# " awful" (3 tokens), " fantastic" (6), " rotten" (5) split with the tiny tokenizer; " bad", " great" do not
MULTI = ClassificationTask(name="multi", template="Review: {text}\nSentiment:",
                           label_words=[[" awful", " bad"], [" great", " fantastic"], [" rotten"]])
# words that share their first tokens share a causal row: " cup final" and " cup team" ride on " cup final team"
SHARED = ClassificationTask(name="shared", template="Article: {text}\nTopic:",
                            label_words=[[" cup final", " cup team"], [" cup final team"], [" awful"], [" sport"]])
TEXTS = ["a great film", "a dull and boring mess of a movie, terrible", "good", "the team won the cup final"]
LABELS = [1, 0, 1, 2]


pytestmark = pytest.mark.usefixtures("one_thread")


def _prompted(arch, task=MULTI, n_virtual=4):
    tok = make_tokenizer()
    model = create_prompt_model(make_model(arch), tok, task, num_virtual_tokens=n_virtual)
    with torch.no_grad():
        weight = model.prompt_encoder["default"].embedding.weight
        weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(1)) * 0.5)
    return model.eval(), tok


def _stock_word_logprob(model, tok, tokenized, text: str, word: list[int]) -> float:
    """Reference: stock PEFT forward on one example, no padding. Causal: [prompt, text, word[:-1]], token j read
    at label position + j. Masked: len(word) masks in the label slot."""
    ids = tok(tokenized.render(text))["input_ids"]
    n = model.peft_config["default"].num_virtual_tokens
    if tokenized.masked_lm:
        m = ids.index(tok.mask_token_id)
        ids = ids[:m] + [tok.mask_token_id] * len(word) + ids[m + 1:]
        positions = [m + j for j in range(len(word))]
    else:
        positions = [len(ids) - 1 + j for j in range(len(word))]
        ids = ids + word[:-1]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long)).logits
    logp = torch.log_softmax(logits[0].float(), -1)
    return sum(logp[n + p, t].item() for p, t in zip(positions, word)) / len(word)


@pytest.mark.parametrize("arch,task", [(arch, MULTI) for arch in ALL_ARCHS] + [("llama", SHARED), ("gpt2", SHARED)])
def test_multi_token_scores_equal_stock_peft_word_by_word(arch, task):
    model, tok = _prompted(arch, task=task)
    tokenized = task.tokenized(tok, masked_lm=arch in MASKED_ARCHS)
    assert tokenized.multi_token and tokenized.label_token_ids is None
    batch = tokenized.encode(TEXTS)
    assert (batch["attention_mask"] == 0).any()  # padded
    with torch.no_grad():
        scores = class_scores(model, tokenized, **batch)
    for i, text in enumerate(TEXTS):
        expected = [sum(_stock_word_logprob(model, tok, tokenized, text, w) for w in words) / len(words)
                    for words in tokenized.label_word_tokens]
        torch.testing.assert_close(scores[i], torch.tensor(expected), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_multi_token_scores_do_not_depend_on_the_batch(arch):
    model, tok = _prompted(arch)
    tokenized = MULTI.tokenized(tok, masked_lm=arch in MASKED_ARCHS)
    with torch.no_grad():
        together = class_scores(model, tokenized, **tokenized.encode(TEXTS))
        for use_prompt in (True, False):
            both = class_scores(model, tokenized, **tokenized.encode(TEXTS), use_prompt=use_prompt)
            for i, text in enumerate(TEXTS):
                alone = class_scores(model, tokenized, **tokenized.encode([text]), use_prompt=use_prompt)
                torch.testing.assert_close(both[i], alone[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(together, class_scores(model, tokenized, **tokenized.encode(TEXTS), use_prompt=False))


def test_rows_per_example_causal_and_masked(tokenizer):
    causal = label_scorer(MULTI.tokenized(tokenizer, masked_lm=False))
    assert causal.rows_per_example == 3  # one per splitting word; single-token words ride on the first
    masked = label_scorer(MULTI.tokenized(tokenizer, masked_lm=True))
    assert masked.probes == [1, 3, 5, 6]  # one per distinct word length
    prefix = tokenizer("Review: good\nSentiment:")["input_ids"]
    rows = causal.transfer_rows(prefix)
    assert rows[0].positions[0] == len(prefix) - 1 and all(r.positions[0] >= len(prefix) for r in rows[1:])
    assert sum(len(r.positions) for r in rows) == 1 + 2 + 5 + 4  # the label position once, then each word's rest
    shared = label_scorer(SHARED.tokenized(tokenizer, masked_lm=False))
    assert shared.probes == [[432, 428], [263, 91]]  # " cup final team" carries " cup final" and " cup team"
    assert [len(r.positions) for r in shared.transfer_rows(prefix)] == [3, 2]


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_single_token_tasks_keep_their_numbers_exactly(arch):
    """The classic score (mean label-word logit at the label position) is what tuning and evaluation use."""
    model, tok = _prompted(arch, task=get_task("rotten_tomatoes"))
    task = ClassificationTask(name="s", template="Review: {text}\nSentiment:",
                              label_words=[[" negative", " bad"], [" positive"]])
    tokenized = task.tokenized(tok, masked_lm=arch in MASKED_ARCHS)
    assert not tokenized.multi_token
    batch = tokenized.encode(TEXTS)
    with torch.no_grad():
        logits = label_logits(model, **batch)
        ids = tokenized.label_token_ids
        expected = torch.stack([logits[:, ids[0]].mean(1), logits[:, ids[1]].mean(1)], dim=1)
        got = class_scores(model, tokenized, **batch)
        assert torch.equal(got, expected)
        # the log-likelihood scores differ by a per-example constant: same ranking and cross-entropy
        loglik = label_scorer(tokenized).scores(model, batch["input_ids"], batch["attention_mask"])
    shift = got - loglik
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift), rtol=1e-4, atol=1e-4)
    labels = torch.tensor([1, 0, 1, 0])
    torch.testing.assert_close(torch.nn.functional.cross_entropy(got, labels),
                               torch.nn.functional.cross_entropy(loglik, labels), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_opacus_per_example_gradients_of_multi_token_scores_are_exact(arch):
    model, tok = _prompted(arch)
    tokenized = MULTI.tokenized(tok, masked_lm=arch in MASKED_ARCHS)
    clf = PromptedTaskModel(model, tokenized).train()
    collate = tokenized.training_collator()
    weight = clf.prompt_encoder.embedding.weight
    reference = []
    for text, label in zip(TEXTS, LABELS):
        weight.grad = None
        one = collate([{"text": text, "label": label}])
        scores = clf(**one)
        torch.nn.functional.cross_entropy(scores, one["labels"], reduction="sum").backward()
        reference.append(weight.grad.detach().clone())
    weight.grad = None
    reference = torch.stack(reference)
    assert reference.abs().max().item() > 1e-5
    gsm = GradSampleModule(clf.prompt_encoder, loss_reduction="sum")
    batch = collate([{"text": t, "label": y} for t, y in zip(TEXTS, LABELS)])
    scores = clf(**batch)
    torch.nn.functional.cross_entropy(scores, batch["labels"], reduction="sum").backward()
    assert weight.grad_sample.shape == (len(TEXTS), *weight.shape)
    diff = (weight.grad_sample - reference).abs().max().item()
    assert diff <= 1e-6 and diff <= 1e-3 * reference.abs().max().item(), diff
    gsm._close()
