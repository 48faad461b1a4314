"""Generation tasks: targets, teacher-forced tuning (exact per-example gradients under DP), greedy continuations
(batch invariant), ROUGE evaluation, the comparison rows."""

import math

import pytest
import torch
from datasets import Dataset
from opacus import GradSampleModule
from tiny_models import CAUSAL_ARCHS, make_model, make_tokenizer
from transfer_helpers import related_models

from peft_transfer import PeftTransferError, TransferablePromptConfig, create_prompt_model
from peft_transfer.evaluation.generation import evaluate_generation, rouge
from peft_transfer.tasks.decoding import generate_continuations, generate_texts
from peft_transfer.tasks.defaults import get_task, task_from_record
from peft_transfer.tasks.generation import GenerationTask, mean_token_nll
from peft_transfer.tune.config import PrivatePromptConfig
from peft_transfer.tune.trainer import PromptedTaskModel, tune_prompt

TASK = GenerationTask(name="topics", template="Article: {text}\nTopic:", max_new_tokens=6, max_length=48)
TEXTS = ["the team won the cup final", "a new phone with a faster chip and a long battery", "the bank raised rates",
         "the minister spoke in parliament about the budget and the rates"]
TARGETS = ["sport", "tech news", "business", "the best of politics"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _prompted(arch, n_virtual=4, seed=1):
    tok = make_tokenizer()
    model = create_prompt_model(make_model(arch), tok, TASK, num_virtual_tokens=n_virtual)
    with torch.no_grad():
        weight = model.prompt_encoder["default"].embedding.weight
        weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(seed)) * 0.5)
    return model.eval(), tok


def test_task_validation_targets_and_record(tokenizer):
    with pytest.raises(PeftTransferError, match="exactly one"):
        GenerationTask(name="x", template="no slot")
    with pytest.raises(PeftTransferError, match="no \\{mask\\}"):
        GenerationTask(name="x", template="{text} {mask}")
    with pytest.raises(PeftTransferError, match="causal LM"):
        TASK.tokenized(tokenizer, masked_lm=True)
    tokenized = TASK.tokenized(tokenizer, masked_lm=False)
    ids = tokenized.target_ids("tech news")
    assert tokenizer.decode(ids) == " tech news\n"
    assert len(tokenized.target_ids("the team won the cup final after a long season")) == TASK.max_new_tokens
    assert tokenized.stop_text(" tech news\nmore") == "tech news"
    record = TASK.record()
    assert record.kind == "generation" and record.to_dict()["max_new_tokens"] == 6
    again = task_from_record(type(record).from_dict(record.to_dict()))
    assert isinstance(again, GenerationTask) and again.template == TASK.template and again.stop == "\n"
    assert "kind" not in get_task("rotten_tomatoes").record().to_dict()  # classification records unchanged
    assert get_task("bbc_titles").kind == "generation"


def test_teacher_forced_batch_reads_each_target_token(tokenizer):
    tokenized = TASK.tokenized(tokenizer, masked_lm=False)
    batch = tokenized.encode_targets(TEXTS, TARGETS)
    for i, (text, target) in enumerate(zip(TEXTS, TARGETS)):
        prefix = tokenizer(tokenized.render(text))["input_ids"]
        ids = tokenized.target_ids(target)
        n = len(ids)
        assert batch["targets"][i, :n].tolist() == ids and (batch["targets"][i, n:] == -100).all()
        row = batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
        assert row == prefix + ids[:-1]
        # the position that predicts target token j holds the token before it
        shift = batch["input_ids"].shape[1] - len(row)
        for j in range(n):
            before = (prefix + ids)[len(prefix) - 1 + j]
            assert batch["input_ids"][i, batch["positions"][i, j]].item() == before
            assert batch["positions"][i, j].item() - shift == len(prefix) - 1 + j


@pytest.mark.parametrize("arch", CAUSAL_ARCHS)
def test_opacus_per_example_gradients_of_the_mean_token_loss_are_exact(arch):
    model, tok = _prompted(arch)
    tokenized = TASK.tokenized(tok, masked_lm=False)
    wrapper = PromptedTaskModel(model, tokenized).train()
    collate = tokenized.training_collator()
    weight = wrapper.prompt_encoder.embedding.weight
    reference = []
    for text, target in zip(TEXTS, TARGETS):
        weight.grad = None
        one = collate([{"text": text, "target": target}])
        tokenized.example_losses(wrapper(**one), one).sum().backward()
        reference.append(weight.grad.detach().clone())
    weight.grad = None
    reference = torch.stack(reference)
    assert reference.abs().max().item() > 1e-5
    gsm = GradSampleModule(wrapper.prompt_encoder, loss_reduction="sum")
    batch = collate([{"text": t, "target": y} for t, y in zip(TEXTS, TARGETS)])
    assert (batch["labels"] == -100).any() and (batch["attention_mask"] == 0).any()  # targets and inputs padded
    losses = tokenized.example_losses(wrapper(**batch), batch)
    losses.sum().backward()
    assert weight.grad_sample.shape == (len(TEXTS), *weight.shape)
    diff = (weight.grad_sample - reference).abs().max().item()
    assert diff <= 1e-6 and diff <= 1e-3 * reference.abs().max().item(), diff
    gsm._close()


def test_private_generation_tuning_saves_a_prompt_with_its_task_and_guarantee(tmp_path):
    tok = make_tokenizer()
    data = Dataset.from_dict({"text": TEXTS * 8, "target": TARGETS * 8})
    args = PrivatePromptConfig(output_dir=str(tmp_path / "p"), target_epsilon=8.0, max_steps=3,
                               per_device_train_batch_size=8, num_virtual_tokens=4, learning_rate=0.05,
                               disable_tqdm=True, logging_steps=1, save_strategy="no", use_cpu=True)
    prompt = tune_prompt(make_model("llama"), tok, TASK, data, args)
    config = TransferablePromptConfig.from_pretrained(str(tmp_path / "p"))
    assert config.dp.private and config.dp.steps == 3 and 0 < config.dp.epsilon <= 8.0 + 1e-6
    assert config.task.kind == "generation" and config.task.template == TASK.template
    assert isinstance(prompt.peft_config["default"].dp.epsilon, float)
    with pytest.raises(PeftTransferError, match="target"):
        tune_prompt(make_model("llama"), tok, TASK, data.rename_column("target", "label"), args)
    with pytest.raises(PeftTransferError, match="causal LM"):
        tune_prompt(make_model("bert"), tok, TASK, data, args)


def test_tuning_lowers_the_target_loss(tmp_path):
    tok = make_tokenizer()
    data = Dataset.from_dict({"text": TEXTS * 8, "target": TARGETS * 8})
    args = PrivatePromptConfig(output_dir=str(tmp_path / "p"), max_steps=15, per_device_train_batch_size=8,
                               num_virtual_tokens=4, learning_rate=1.0, disable_tqdm=True, logging_steps=1,
                               save_strategy="no", use_cpu=True)
    tokenized = TASK.tokenized(tok, masked_lm=False)
    batch = tokenized.encode_targets(TEXTS, TARGETS)

    def loss(prompt):
        wrapper = PromptedTaskModel(prompt, tokenized)
        with torch.no_grad():
            logits = wrapper(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             positions=batch["positions"])
        return mean_token_nll(logits, batch["targets"]).mean().item()

    # a peaked tiny model (random ones are near-uniform and barely steerable), the same text init before and after
    before = loss(create_prompt_model(related_models()[0], tok, TASK, num_virtual_tokens=4))
    after = loss(tune_prompt(related_models()[0], tok, TASK, data, args))
    assert after < before - 0.2, (before, after)


@pytest.mark.parametrize("arch", CAUSAL_ARCHS)
def test_greedy_continuations_do_not_depend_on_the_batch(arch):
    model, tok = _prompted(arch)
    together = generate_continuations(model, tok, TASK, TEXTS)
    assert all(0 < len(c) <= TASK.max_new_tokens for c in together)
    assert together == [generate_continuations(model, tok, TASK, [t])[0] for t in TEXTS]
    plain = generate_continuations(model, tok, TASK, TEXTS, use_prompt=False)
    assert plain == generate_continuations(model.get_base_model(), tok, TASK, TEXTS)


def test_continuation_stops_at_the_stop_string(tokenizer):
    model, tok = _prompted("llama")
    newline = tok("\n", add_special_tokens=False)["input_ids"][0]
    head = model.get_base_model().get_output_embeddings()

    def newline_first(module, args, output):
        output[..., newline] += 1000.0  # the model always answers a newline: the continuation is that one token
        return output

    handle = head.register_forward_hook(newline_first)
    try:
        assert generate_continuations(model, tok, TASK, TEXTS[:2]) == [[newline], [newline]]
        assert generate_texts(model, tok, TASK, TEXTS[:2]) == ["", ""]
    finally:
        handle.remove()


def test_rouge_comes_from_rouge_score_and_evaluation_scores_the_set():
    perfect = rouge(["Ad sales boost Time Warner profit"], ["Ad sales boost Time Warner profit"])
    assert perfect == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    partial = rouge(["Time Warner ad sales rise"], ["Ad sales boost Time Warner profit"])
    assert math.isclose(partial["rouge1"], 2 * 0.8 * 4 / 6 / (0.8 + 4 / 6))
    with pytest.raises(PeftTransferError):
        rouge(["a"], [])
    model, tok = _prompted("llama")
    data = Dataset.from_dict({"text": TEXTS, "target": TARGETS})
    result = evaluate_generation(model, tok, TASK, data, batch_size=2)
    assert result.n == 4 and 0.0 <= result.rouge_l <= 1.0
    with pytest.raises(PeftTransferError, match="target"):
        evaluate_generation(model, tok, TASK, data.remove_columns("target"))
