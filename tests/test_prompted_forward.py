"""The prompted forward: equal to stock PEFT, batch invariant under left and right padding."""

import pytest
import torch
from tiny_models import ALL_ARCHS, CAUSAL_ARCHS, MASKED_ARCHS, make_model, make_tokenizer

from peft_transfer import create_prompt_model, get_task, label_logits

TEXTS = ["a great film", "a dull and boring mess of a movie, terrible", "good", "the team won the cup final"]


def _prompted(arch, n_virtual=4):
    tok = make_tokenizer()
    model = create_prompt_model(make_model(arch), tok, get_task("rotten_tomatoes"), num_virtual_tokens=n_virtual)
    with torch.no_grad():  # a non-trivial prompt, not just word embeddings
        model.prompt_encoder["default"].embedding.weight.add_(torch.randn_like(
            model.prompt_encoder["default"].embedding.weight) * 0.5)
    return model.eval(), tok


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_equals_stock_peft_forward_with_right_padding(arch):
    model, tok = _prompted(arch)
    tokenized = get_task("rotten_tomatoes").tokenized(tok, masked_lm=arch in MASKED_ARCHS, padding_side="right")
    batch = tokenized.encode(TEXTS)
    with torch.no_grad():
        ours = label_logits(model, batch["input_ids"], batch["attention_mask"], batch["label_positions"])
        stock = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    stock = stock[torch.arange(len(TEXTS)), batch["label_positions"] + 4]
    torch.testing.assert_close(ours, stock, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ALL_ARCHS)
@pytest.mark.parametrize("use_prompt", [True, False])
def test_scores_do_not_depend_on_the_batch(arch, use_prompt):
    model, tok = _prompted(arch)
    sides = ["right"] if arch in MASKED_ARCHS else ["left", "right"]
    results = []
    for side in sides:
        tokenized = get_task("rotten_tomatoes").tokenized(tok, masked_lm=arch in MASKED_ARCHS, padding_side=side)
        with torch.no_grad():
            batch = tokenized.encode(TEXTS)
            together = label_logits(model, batch["input_ids"], batch["attention_mask"], batch["label_positions"],
                                    use_prompt=use_prompt)
            for i, text in enumerate(TEXTS):
                one = tokenized.encode([text])
                alone = label_logits(model, one["input_ids"], one["attention_mask"], one["label_positions"],
                                     use_prompt=use_prompt)
                torch.testing.assert_close(together[i], alone[0], rtol=1e-4, atol=1e-5)
        results.append(together)
    for other in results[1:]:
        torch.testing.assert_close(results[0], other, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", CAUSAL_ARCHS)
def test_prompt_changes_the_label_logits(arch):
    model, tok = _prompted(arch)
    batch = get_task("rotten_tomatoes").tokenized(tok, masked_lm=False).encode(TEXTS[:2])
    with torch.no_grad():
        with_prompt = label_logits(model, **batch)
        without = label_logits(model, **batch, use_prompt=False)
        plain = label_logits(model.get_base_model(), **batch)
    assert not torch.allclose(with_prompt, without)
    torch.testing.assert_close(without, plain)


def test_prompt_embeddings_carry_the_batch_dimension():
    from peft_transfer import prompt_embeddings

    model, _ = _prompted("llama")
    emb = prompt_embeddings(model, 3)
    assert emb.shape == (3, 4, 32)
    torch.testing.assert_close(emb[0], model.prompt_encoder["default"].embedding.weight)
