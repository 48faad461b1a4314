"""ClassificationTask: validation, encoding, label positions, class scores, multi-token label words."""

import pytest
import torch
from tiny_models import make_tokenizer

from peft_transfer import ClassificationTask, PeftTransferError
from peft_transfer.tasks.defaults import bbc_news_task, rotten_tomatoes_task

SENTIMENT = dict(name="s", template="Review: {text}\nSentiment:", label_words=[[" negative", " bad"], [" positive"]])


def test_template_without_text_slot_is_refused():
    with pytest.raises(PeftTransferError, match=r"\{text\}"):
        ClassificationTask(name="x", template="Review:", label_words=[[" a"], [" b"]])


def test_class_without_label_words_is_refused():
    with pytest.raises(PeftTransferError, match="class 1 has no label words"):
        ClassificationTask(name="x", template="{text}", label_words=[[" a"], []])


def test_single_class_is_refused():
    with pytest.raises(PeftTransferError, match="at least 2 classes"):
        ClassificationTask(name="x", template="{text}", label_words=[[" a"]])


def test_multi_token_label_words_are_kept_whole(tokenizer):
    task = ClassificationTask(name="x", template="{text} is", label_words=[[" rotten"], [" positive"]])
    tokenized = task.tokenized(tokenizer, masked_lm=False)
    assert tokenized.multi_token and tokenized.label_token_ids is None
    assert tokenized.label_word_tokens[0] == [tokenizer(" rotten", add_special_tokens=False)["input_ids"]]
    assert len(tokenized.label_word_tokens[0][0]) > 1
    with pytest.raises(PeftTransferError, match="label_scoring"):  # one position cannot score them
        tokenized.class_scores(torch.zeros(1, len(tokenizer)))


def test_label_word_outside_vocabulary_is_refused(tokenizer):
    task = ClassificationTask(name="x", template="{text} is", label_words=[["<unk>"], [" positive"]])
    with pytest.raises(PeftTransferError, match="not in this tokenizer's vocabulary"):
        task.tokenized(tokenizer, masked_lm=False)
    # a byte-level tokenizer spells any other word in bytes: kept, as several tokens
    rare = ClassificationTask(name="x", template="{text} is", label_words=[["\u4e2d"], [" positive"]])
    assert rare.tokenized(tokenizer, masked_lm=False).multi_token


@pytest.mark.parametrize("side", ["left", "right"])
def test_causal_label_position_is_last_real_token(tokenizer, side):
    tokenized = ClassificationTask(**SENTIMENT).tokenized(tokenizer, masked_lm=False, padding_side=side)
    texts = ["good", "a dull and boring mess of a movie"]
    batch = tokenized.encode(texts)
    for i, text in enumerate(texts):
        alone = tokenizer(tokenized.render(text))["input_ids"]
        pos = int(batch["label_positions"][i])
        assert batch["input_ids"][i, pos].item() == alone[-1]
        assert batch["attention_mask"][i, pos].item() == 1
        if side == "right":
            assert pos == len(alone) - 1
        else:
            assert pos == batch["input_ids"].shape[1] - 1


def test_masked_label_position_is_the_mask_token(tokenizer):
    tokenized = ClassificationTask(**SENTIMENT).tokenized(tokenizer, masked_lm=True)
    batch = tokenized.encode(["good", "a dull and boring mess of a movie"])
    picked = batch["input_ids"][torch.arange(2), batch["label_positions"]]
    assert (picked == tokenizer.mask_token_id).all()


def test_mask_slot_inside_template_for_masked_and_causal(tokenizer):
    task = ClassificationTask(name="m", template="{text} It was {mask}", label_words=[[" bad"], [" good"]])
    masked = task.tokenized(tokenizer, masked_lm=True)
    assert masked.render("x").endswith("It was <mask>")
    causal = task.tokenized(tokenizer, masked_lm=False)
    assert causal.render("x") == "x It was"
    bad = ClassificationTask(name="m", template="{mask} says {text}", label_words=[[" bad"], [" good"]])
    with pytest.raises(PeftTransferError, match="must end the template"):
        bad.tokenized(tokenizer, masked_lm=False)


def test_long_text_is_truncated_but_label_slot_kept(tokenizer):
    task = ClassificationTask(name="s", template="Review: {text}\nSentiment:",
                              label_words=[[" negative"], [" positive"]], max_length=24)
    tokenized = task.tokenized(tokenizer, masked_lm=False)
    batch = tokenized.encode(["the quick brown fox jumps over the lazy dog " * 20])
    assert batch["input_ids"].shape[1] <= 24
    assert tokenized.render("the quick brown fox " * 40).endswith("\nSentiment:")


def test_class_scores_are_mean_label_word_logits(tokenizer):
    tokenized = ClassificationTask(**SENTIMENT).tokenized(tokenizer, masked_lm=False)
    logits = torch.randn(3, len(tokenizer))
    neg, bad = (tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (" negative", " bad"))
    pos = tokenizer(" positive", add_special_tokens=False)["input_ids"][0]
    expected = torch.stack([(logits[:, neg] + logits[:, bad]) / 2, logits[:, pos]], dim=1)
    torch.testing.assert_close(tokenized.class_scores(logits), expected)


def test_empty_batch_is_refused(tokenizer):
    with pytest.raises(PeftTransferError, match="empty"):
        ClassificationTask(**SENTIMENT).tokenized(tokenizer, masked_lm=False).encode([])


def test_default_tasks_fit_the_tiny_tokenizer():
    tok = make_tokenizer()
    for task in (rotten_tomatoes_task(), bbc_news_task()):
        for masked in (False, True):
            assert len(task.tokenized(tok, masked_lm=masked).label_token_ids) == task.num_classes


def test_each_task_kind_says_what_the_model_should_answer():
    from peft_transfer.tasks.defaults import get_task

    sentiment, titles = get_task("rotten_tomatoes"), get_task("bbc_titles")
    assert sentiment.answer_text({"text": "fine", "label": 1}) == sentiment.label_words[1][0]
    assert titles.answer_text({"text": "article", "target": " A title "}) == " A title" + (titles.stop or "")
