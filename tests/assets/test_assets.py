"""Embedded real assets: data splits (fast) and the real SmolLM2 model (integration)."""

import pytest
import torch

from peft_transfer import get_task
from peft_transfer.assets import load_bbc_news, load_model, load_public_texts, load_rotten_tomatoes
from peft_transfer.assets.data import PUBLIC_TEXT_SETS


def test_rotten_tomatoes_splits_are_fixed_disjoint_and_balanced_like_the_source():
    data = load_rotten_tomatoes()
    assert len(data["test"]) == 2000 and len(data["train"]) > 10000
    assert data["train"].features["label"].names == ["negative", "positive"]
    assert not set(data["train"]["text"]) & set(data["test"]["text"])
    again = load_rotten_tomatoes()
    assert again["test"]["text"] == data["test"]["text"]
    share = sum(data["test"]["label"]) / len(data["test"])
    assert 0.5 < share < 0.65  # 7,403 fresh of 12,808; stratified


def test_bbc_news_has_five_topics_and_fixed_split():
    data = load_bbc_news()
    assert data["train"].features["label"].names == ["business", "entertainment", "politics", "sport", "tech"]
    assert len(data["test"]) == 500 and set(data["test"]["label"]) == set(range(5))
    assert not set(data["train"]["text"]) & set(data["test"]["text"])


@pytest.mark.parametrize("name", sorted(set(PUBLIC_TEXT_SETS) - {"bbc_articles"}))
def test_public_sets_are_texts_disjoint_from_private_reviews(name):
    public = load_public_texts(name)
    assert public.column_names == ["text"] and len(public) >= 100
    reviews = set(load_rotten_tomatoes()["train"]["text"]) | set(load_rotten_tomatoes()["test"]["text"])
    assert not reviews & set(public["text"])
    assert len(load_public_texts(name, limit=50, seed=1)) == 50


@pytest.mark.integration
def test_real_model_loads_tokenizes_and_gives_finite_logits():
    model, tok = load_model("smollm2-135m")
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert model.name_or_path == "HuggingFaceTB/SmolLM2-135M-Instruct"
    for name in ("rotten_tomatoes", "bbc_news"):
        tokenized = get_task(name).tokenized(tok, masked_lm=False)
        assert all(len(ids) == 1 for ids in tokenized.label_token_ids)
        batch = tokenized.encode(["A moving, beautifully acted film.", "Shares fell sharply on Monday."])
        from peft_transfer import label_logits

        with torch.no_grad():
            logits = label_logits(model, **batch)
        assert logits.shape == (2, 49152) and torch.isfinite(logits).all()


@pytest.mark.integration
def test_cli_evaluate_on_the_real_model(capsys):
    from peft_transfer.cli import main

    assert main(["evaluate", "--task", "rotten_tomatoes", "--limit", "8", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"n": 8' in out
