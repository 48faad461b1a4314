"""Sequence targets on the embedded data and the real SmolLM2: the bbc_titles split and its public set; a
verbaliser whose words split (and share their first token); greedy titles (integration)."""

import dataclasses

import pytest
import torch

from peft_transfer import ClassificationTask, get_task
from peft_transfer.assets import load_labelled_dataset, load_model, load_public_texts

pytestmark = pytest.mark.usefixtures("one_thread")


THUMBS = ClassificationTask(name="thumbs", template="Review: {text}\nVerdict:",
                            label_words=[[" thumbs down"], [" thumbs up"]], max_length=128)


def test_bbc_titles_split_is_fixed_and_its_public_set_is_disjoint():
    data = load_labelled_dataset("bbc_titles")
    assert data["train"].column_names == ["text", "target"] and len(data["test"]) == 500
    assert not set(data["train"]["text"]) & set(data["test"]["text"])
    assert load_labelled_dataset("bbc_titles")["test"]["target"] == data["test"]["target"]
    bbc = set(data["train"]["text"]) | set(data["test"]["text"]) | set(data["train"]["target"])
    public = load_public_texts("lee_news")["text"]
    assert not bbc & set(public)
    assert not any(title in text for title in data["test"]["target"][:100] for text in public)


@pytest.mark.integration
def test_split_label_words_on_the_real_model():
    """' thumbs down' / ' thumbs up' share their first token: first-token scoring cannot tell them apart; the
    length-normalised log-likelihood can, and equals a word-by-word forward."""
    from peft_transfer.tasks.label_scoring import class_scores, label_scorer

    model, tok = load_model("smollm2-135m")
    tokenized = THUMBS.tokenized(tok, masked_lm=False)
    down, up = (words[0] for words in tokenized.label_word_tokens)
    assert down[0] == up[0] and down[1] != up[1]
    assert label_scorer(tokenized).rows_per_example == 1  # one row serves both words
    texts = load_labelled_dataset("rotten_tomatoes")["test"]["text"][:2]
    with torch.no_grad():
        scores = class_scores(model, tokenized, **tokenized.encode(texts))
        for i, text in enumerate(texts):
            ids = tok(tokenized.render(text))["input_ids"]
            for c, word in enumerate((down, up)):
                logp = torch.log_softmax(model(input_ids=torch.tensor([ids + word[:-1]])).logits[0].float(), -1)
                expected = sum(logp[len(ids) - 1 + j, t].item() for j, t in enumerate(word)) / len(word)
                assert abs(scores[i, c].item() - expected) < 1e-3
    assert (scores[:, 0] != scores[:, 1]).all()


@pytest.mark.integration
def test_greedy_titles_on_the_real_model_are_batch_invariant():
    from peft_transfer.evaluation.generation import rouge
    from peft_transfer.tasks.decoding import generate_continuations

    model, tok = load_model("smollm2-135m")
    task = dataclasses.replace(get_task("bbc_titles"), max_length=64, max_new_tokens=6)  # kept short for CPU time
    test = load_labelled_dataset("bbc_titles")["test"].select(range(2))
    together = generate_continuations(model, tok, task, list(test["text"]))
    assert together == [generate_continuations(model, tok, task, [t])[0] for t in test["text"]]
    titles = [task.tokenized(tok, False).stop_text(tok.decode(c, skip_special_tokens=True)) for c in together]
    assert all(0.0 <= v <= 1.0 for v in rouge(titles, list(test["target"])).values())
