"""Compressed students: calibration cache, block choice, folded linear maps, trained replacements, CLI, healing."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tiny_models import CORPUS, distill_inputs, make_model, make_tokenizer
from transformers import AutoModelForCausalLM

from peft_transfer.distill.block_selection import (
    angular_distance_table,
    blocks_from_kept,
    kept_from_blocks,
    select_blocks,
)
from peft_transfer.distill.calibration import calibrate, load_calibration
from peft_transfer.distill.compress import compress_student
from peft_transfer.distill.linear_map import LinearMapSettings, fit_linear_map
from peft_transfer.distill.trained_replacement import ReplacementSettings
from peft_transfer.errors import PeftTransferError
from peft_transfer.provenance import StudentLineage
from peft_transfer.student.layers import fold_output_map, layer_list, make_student, mlp_branch, student_lineage

pytestmark = pytest.mark.usefixtures("one_thread")

ARCHS = ("llama", "qwen2", "gemma3", "gpt2")
FOLDABLE = ("llama", "qwen2", "gpt2")
FAST_LINEAR = LinearMapSettings(steps=20, eval_every=5)
FAST_TRAINED = ReplacementSettings(steps=40, eval_every=10, learning_rate=1e-3)


def _ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(5, 400, (2, 12), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("calibration")


def _calibrated(arch, cache_dir, layers=6):
    teacher = make_model(arch, num_layers=layers)
    cache = calibrate(teacher, make_tokenizer(), CORPUS[:40], "tiny corpus", tokens=384, block_size=16,
                      cache_dir=cache_dir, chunk_blocks=10, progress=False)
    return teacher, cache


# --- calibration -----------------------------------------------------------------------------------------------


def test_calibration_holds_the_teachers_hidden_states_and_mlp_outputs(cache_dir):
    teacher, cache = _calibrated("llama", cache_dir)
    assert cache.num_tokens == 384 and cache.has_mlp and len(cache.meta["chunks"]) == 3  # 24 blocks, 10 per chunk
    ids = torch.tensor(_blocks(cache))
    captured = []
    hook = layer_list(teacher)[2].mlp.register_forward_hook(lambda _m, _a, out: captured.append(out))
    with torch.no_grad():
        out = teacher(input_ids=ids, output_hidden_states=True)
    hook.remove()
    for i in (0, 3, 6):  # input of layers 0 and 3, the final (normed) state
        torch.testing.assert_close(cache.hidden(i), out.hidden_states[i].reshape(-1, 32), atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(cache.mlp(2), captured[0].reshape(-1, 32), atol=2e-3, rtol=2e-3)
    assert "tiny corpus (sha256:" in cache.record() and "384 tokens" in cache.record()


def _blocks(cache):
    from peft_transfer.distill.data import prepare_blocks

    return prepare_blocks(CORPUS[:40], make_tokenizer(), 16, max_blocks=24)["input_ids"]


def test_calibration_is_reused_resumed_and_subsampled(cache_dir, tmp_path, monkeypatch):
    teacher, cache = _calibrated("llama", cache_dir)
    calls = []
    monkeypatch.setattr(type(teacher.model), "forward", _counting(type(teacher.model).forward, calls))
    again = calibrate(teacher, make_tokenizer(), CORPUS[:40], "tiny corpus", tokens=384, block_size=16,
                      cache_dir=cache_dir, chunk_blocks=10, progress=False)
    assert again.folder == cache.folder and calls == []  # finished: no teacher forward at all
    # a killed run: the last chunk and the record missing -> only that chunk is computed again
    first = cache.hidden(1)
    (cache.folder / "calibration.json").unlink()
    (cache.folder / cache.meta["chunks"][-1]).unlink()
    resumed = calibrate(teacher, make_tokenizer(), CORPUS[:40], "tiny corpus", tokens=384, block_size=16,
                        cache_dir=cache_dir, chunk_blocks=10, progress=False)
    assert len(calls) == 1 and torch.equal(resumed.hidden(1), first)  # 4 blocks left: one batch of 8
    sub = calibrate(teacher, make_tokenizer(), CORPUS[:40], "tiny corpus", tokens=384, block_size=16,
                    cache_dir=tmp_path, max_stored_tokens=96, progress=False)
    assert sub.num_tokens == 96 and sub.meta["tokens"] == 384 and "96 stored" in sub.record()
    assert load_calibration(sub.folder).meta == sub.meta


def _counting(forward, calls):
    def wrapped(self, *args, **kwargs):
        calls.append(1)
        return forward(self, *args, **kwargs)
    return wrapped


# --- block selection -------------------------------------------------------------------------------------------


def _states(num_layers: int, same: list[tuple[int, int]], tokens: int = 50, d: int = 16) -> torch.Tensor:
    """(L+1) x tokens x d random states where each pair (i, j) in `same` is nearly equal."""
    gen = torch.Generator().manual_seed(0)
    states = torch.randn(num_layers + 1, tokens, d, generator=gen)
    for i, j in same:
        states[j] = states[i] + 0.01 * torch.randn(tokens, d, generator=gen)
    return states


def test_angular_distance_is_arccos_over_pi_averaged_over_tokens():
    e1, e2 = torch.eye(2)
    chunk = torch.stack([torch.stack([e1, e1]), torch.stack([e2, -e1])])  # 2 states x 2 tokens x 2 dims
    table = angular_distance_table([chunk[:, :1], chunk[:, 1:]])  # two chunks, one token each
    assert table.shape == (2, 2) and math.isclose(float(table[0, 1]), (0.5 + 1.0) / 2, abs_tol=1e-6)
    assert float(table[1, 1]) == 0.0 and torch.allclose(table, table.T)


def test_block_selection_picks_the_block_whose_ends_agree_and_never_the_first_or_last_layer():
    # 10 layers; h_0 ~ h_3 (would take out layer 0) and h_7 ~ h_10 (the last layer): both forbidden
    states = _states(10, [(0, 3), (3, 6), (7, 10)])
    table = angular_distance_table([states])
    sel = select_blocks(table, keep=7)
    assert sel.removed_blocks == [[3, 6]] and sel.kept_layers == [0, 1, 2, 6, 7, 8, 9]
    assert sel.block_distances[0] == pytest.approx(float(table[3, 6])) and sel.block_distances[0] < 0.01
    assert set(sel.candidates(3)) == set(range(1, 7)) and min(sel.candidates(3).values()) == sel.block_distances[0]
    # two blocks: the two near-identity spans, a kept layer between them
    two = select_blocks(angular_distance_table([_states(10, [(1, 3), (5, 8)])]), keep=5, num_blocks=2)
    assert two.removed_blocks == [[1, 3], [5, 8]] and two.kept_layers == [0, 3, 4, 8, 9]
    record = two.to_dict()
    assert set(record["candidates"]) == {"2", "3"} and len(record["angular_distance_table"]) == 11
    assert kept_from_blocks(10, [[1, 3], [5, 8]]) == two.kept_layers
    assert blocks_from_kept(10, two.kept_layers) == two.removed_blocks
    with pytest.raises(PeftTransferError, match="removes nothing"):
        select_blocks(table, keep=10)
    with pytest.raises(PeftTransferError, match="first and last layers stay"):
        select_blocks(table, keep=1)
    with pytest.raises(PeftTransferError, match="kept layer between them"):
        select_blocks(table, keep=8, num_blocks=3)


# --- linear map --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", FOLDABLE)
def test_folded_map_gives_y_plus_m_t_after_the_layer_before_the_block(arch):
    teacher = make_model(arch, num_layers=5)
    keep = [0, 1, 4]  # block [2, 4) folded into layer 1
    transform = torch.eye(32) + 0.3 * torch.randn(32, 32, generator=torch.Generator().manual_seed(1))
    student = make_student(teacher, keep)
    fold_output_map(student, 1, transform)
    captured = []
    hook = layer_list(teacher)[1].mlp.register_forward_hook(lambda _m, _a, out: captured.append(out))
    with torch.no_grad():
        t_out = teacher(_ids(), output_hidden_states=True)
        s_out = student(_ids(), output_hidden_states=True)
    hook.remove()
    m = captured[0]
    y = t_out.hidden_states[2] - m  # the stream before layer 1's MLP adds to it
    torch.testing.assert_close(s_out.hidden_states[2], y + m @ transform, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s_out.hidden_states[1], t_out.hidden_states[1])  # earlier layers untouched


@pytest.mark.parametrize("arch", FOLDABLE)
def test_least_squares_fits_the_block_better_than_removal(arch, cache_dir):
    _, cache = _calibrated(arch, cache_dir)
    plain = fit_linear_map(cache, [2, 4], "ls", LinearMapSettings(weighting="none"))
    assert plain.metrics["fitted"]["fit_mse"] < plain.metrics["fitted"]["removed_mse"], plain.metrics
    relative = fit_linear_map(cache, [2, 4], "ls")  # default: each token's error relative to its target
    assert relative.metrics["fitted"]["fit_rel"] < relative.metrics["fitted"]["removed_rel"], relative.metrics
    cos = fit_linear_map(cache, [2, 4], "cos", FAST_LINEAR)
    held = cos.metrics["held_out"]
    assert held["fit_cos"] <= held["removed_cos"] and held["fit_cos"] <= relative.metrics["held_out"]["fit_cos"] + 1e-7
    # a huge ridge pulls T to the identity (= removal)
    far = fit_linear_map(cache, [2, 4], "ls", LinearMapSettings(ridge=1e9))
    assert far.metrics["fitted"]["fit_rel"] == pytest.approx(far.metrics["fitted"]["removed_rel"], rel=1e-4)


def test_relative_least_squares_is_not_captured_by_massive_activation_tokens():
    from peft_transfer.distill.linear_map import least_squares_map

    gen = torch.Generator().manual_seed(0)
    m = torch.randn(400, 8, generator=gen)
    true = torch.eye(8) + 0.5 * torch.randn(8, 8, generator=gen)
    target = m @ true
    target[::50] = 1e4 * torch.randn(8, 8, generator=gen)  # 8 tokens of huge norm that follow no map
    normal = torch.ones(400, dtype=torch.bool)
    normal[::50] = False
    plain = least_squares_map(m, target, ridge=0.0)
    relative = least_squares_map(m, target, ridge=0.0, weights=1 / target.pow(2).sum(-1))
    assert (relative - true).norm() < 0.05 * true.norm() < (plain - true).norm()
    cos = torch.nn.functional.cosine_similarity
    assert cos(m[normal] @ relative, target[normal]).mean() > 0.99 > cos(m[normal] @ plain, target[normal]).mean()


def test_gemma3_linear_map_is_refused_clearly(cache_dir):
    teacher = make_model("gemma3", num_layers=4)
    with pytest.raises(PeftTransferError, match="post_feedforward_layernorm"):
        compress_student(teacher, 3, "linear-ls", tokenizer=make_tokenizer(), texts=CORPUS[:40])
    with pytest.raises(PeftTransferError, match="post_feedforward_layernorm"):
        fold_output_map(make_student(teacher, [0, 3]), 0, torch.eye(32))
    with pytest.raises(PeftTransferError, match="not a decoder LM"):
        compress_student(make_model("bert", num_layers=4), 3, "drop", tokenizer=make_tokenizer(), texts=CORPUS)


# --- trained replacement -------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_trained_replacement_is_h_plus_mlp_branch_and_learns(arch, cache_dir):
    teacher, cache = _calibrated(arch, cache_dir)
    result = compress_student(teacher, [0, 1, 4, 5], "trained", calibration=cache, replacement=FAST_TRAINED,
                              progress=False)
    student = result.student
    lineage = student_lineage(student)
    assert lineage.kept_layers == [0, 1, 2, 4, 5] and lineage.replacement_layers == [2]
    fit = result.fits[0]["metrics"]
    assert fit["fitted"]["final"] < fit["fitted"]["start"] and fit["held_out"]["final"] <= fit["held_out"]["start"]
    mse = compress_student(teacher, [0, 1, 4, 5], "trained", calibration=cache, progress=False,
                           replacement=ReplacementSettings(steps=40, eval_every=10, learning_rate=1e-3, loss="mse"))
    assert mse.fits[0]["metrics"]["fitted"]["final"] < mse.fits[0]["metrics"]["fitted"]["start"]  # LLM-Streamline's
    layer = layer_list(student)[2]
    with torch.no_grad():
        hidden = student(_ids(), output_hidden_states=True).hidden_states
        by_hand = hidden[2] + mlp_branch(student, layer, hidden[2])  # no attention: position by position
    torch.testing.assert_close(hidden[3], by_hand, atol=1e-5, rtol=1e-5)
    # only the MLP branch changed: attention input projections are teacher layer 2's
    t_layer = layer_list(teacher)[2]
    for (name, p), (_, q) in zip(layer.named_parameters(), t_layer.named_parameters(), strict=True):
        if "mlp" in name or "feedforward" in name or "post_attention_layernorm" in name or "ln_2" in name:
            continue
        if name.endswith(("o_proj.weight", "c_proj.weight", "c_proj.bias")) and "attn" in name:
            assert not p.any(), name
        else:
            assert torch.equal(p, q), name


# --- every method, every family: a standard folder --------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
def test_every_method_saves_a_standard_model_with_lineage(arch, cache_dir, tmp_path):
    teacher, cache = _calibrated(arch, cache_dir)
    methods = ("drop", "linear-ls", "linear-cos", "trained") if arch in FOLDABLE else ("drop", "trained")
    for method in methods:
        result = compress_student(teacher, 4, method, calibration=cache, linear=FAST_LINEAR,
                                  replacement=FAST_TRAINED, progress=False)
        folder = tmp_path / method
        result.student.save_pretrained(folder)
        loaded = AutoModelForCausalLM.from_pretrained(folder).eval()
        assert type(loaded) is type(teacher)
        removed = result.selection.removed_blocks
        assert len(removed) == 1 and removed[0][1] - removed[0][0] == 2 and 1 <= removed[0][0] <= 3
        assert loaded.config.num_hidden_layers == (5 if method == "trained" else 4)
        lineage = student_lineage(loaded)
        assert lineage.method == method and lineage.removed_blocks == removed and lineage.teacher_num_layers == 6
        assert lineage.calibration == cache.record() and lineage.teacher_sha256.startswith("sha256:")
        with torch.no_grad():
            torch.testing.assert_close(loaded(_ids()).logits, result.student(_ids()).logits)
        record = result.to_dict()
        assert record["method"] == method and record["calibration"]["tokens"] == 384
        assert json.loads(json.dumps(record)) == record
    # a plain drop is make_student of the kept layers, bit for bit
    drop = compress_student(teacher, 4, "drop", calibration=cache, progress=False)
    plain = make_student(teacher, drop.selection.kept_layers)
    with torch.no_grad():
        assert torch.equal(drop.student(_ids()).logits, plain(_ids()).logits)


def test_compressed_student_ships_as_a_delta_and_reassembles_exactly(cache_dir, tmp_path):
    from peft_transfer.student.shipped import export_shipped_student, reassemble_student

    teacher, cache = _calibrated("llama", cache_dir)
    for method in ("linear-cos", "trained"):
        result = compress_student(teacher, 4, method, calibration=cache, linear=FAST_LINEAR,
                                  replacement=FAST_TRAINED, progress=False)
        folder = tmp_path / method
        result.student.save_pretrained(folder)
        export_shipped_student(folder, teacher, tmp_path / f"{method}-shipped")
        rebuilt = reassemble_student(tmp_path / f"{method}-shipped", teacher)
        with torch.no_grad():
            torch.testing.assert_close(rebuilt(_ids()).logits, result.student(_ids()).logits, atol=5e-3, rtol=5e-3)
        assert student_lineage(rebuilt).method == method


def test_lineage_without_the_new_fields_loads_and_stays_byte_identical():
    old = {"teacher": "t", "kept_layers": [0, 3], "teacher_num_layers": 4}
    lineage = StudentLineage.from_dict(old)
    assert lineage.method is None and lineage.to_dict() == {**old, "distillation_steps": None, "teacher_sha256": None,
                                                            "corpus": None, "tokens_seen": None, "recipe": None}
    new = StudentLineage("t", [0, 3], 4, method="trained", removed_blocks=[[1, 3]], replacement_layers=[1])
    assert StudentLineage.from_dict(json.loads(json.dumps(new.to_dict()))) == new


def test_compress_bad_inputs(cache_dir):
    teacher, cache = _calibrated("llama", cache_dir)
    with pytest.raises(PeftTransferError, match="unknown compression method"):
        compress_student(teacher, 4, "prune", calibration=cache)
    with pytest.raises(PeftTransferError, match="first or the last layer"):
        compress_student(teacher, [1, 2, 3, 4, 5], "drop", calibration=cache)
    with pytest.raises(PeftTransferError, match="other teacher weights"):
        compress_student(make_model("llama", num_layers=6, seed=3), 4, "drop", calibration=cache)
    with pytest.raises(PeftTransferError, match="itself a student"):
        compress_student(make_student(teacher, [0, 1, 2, 5]), 3, "drop", calibration=cache)
    with pytest.raises(PeftTransferError, match="calibration cache or texts"):
        compress_student(teacher, 4, "drop")


# --- CLI and healing -------------------------------------------------------------------------------------------


def test_cli_compress_writes_a_standard_folder_and_heals_with_distill(tmp_path, capsys):
    from huggingface_hub import ModelCard

    from peft_transfer.cli import main

    teacher, corpus = distill_inputs(tmp_path)  # 4-layer tiny Llama and 40 lines of text
    out = tmp_path / "student"
    common = ["compress", "--teacher", teacher, "--calibration", corpus, "--calibration-tokens", "320",
              "--block-size", "16", "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--cos-steps", "10",
              "--eval-text", "none"]
    assert main([*common, "--keep-layers", "3", "--method", "linear-cos", "--out", str(out),
                 "--eval-text", corpus, "--eval-blocks", "4", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["method"] == "linear-cos" and summary["num_layers"] == 3
    assert summary["calibration"]["tokens"] == 320 and summary["build_seconds"] > 0
    assert set(summary["perplexity"]) == {"teacher", "student", "blocks dropped (no replacement)"}
    assert len(summary["removed_blocks"]) == 1 and summary["block_distances"][0] >= 0
    for name in ("model.safetensors", "config.json", "tokenizer.json", "README.md", "compress_summary.json"):
        assert (out / name).is_file(), name
    full = json.loads((out / "compress_summary.json").read_text())
    assert len(full["angular_distance_table"]) == 5 and full["settings"]["method"] == "linear-cos"
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 3 and student_lineage(model).method == "linear-cos"
    card = ModelCard.load(out / "README.md")
    assert "layer-pruning" in card.data.tags and "| Method | `linear-cos` |" in card.text
    # the same settings again: the finished student is returned, nothing rebuilt
    before = (out / "model.safetensors").stat().st_mtime_ns
    assert main([*common, "--keep-layers", "3", "--method", "linear-cos", "--out", str(out),
                 "--eval-text", corpus, "--eval-blocks", "4"]) == 0
    assert (out / "model.safetensors").stat().st_mtime_ns == before
    # other settings into the same folder are refused; explicit kept layers work
    assert main([*common, "--keep-layers", "3", "--method", "drop", "--out", str(out)]) == 2
    assert "other settings" in capsys.readouterr().err
    assert main([*common, "--keep-layers", "0,3", "--method", "drop", "--out", str(tmp_path / "d")]) == 0
    assert student_lineage(AutoModelForCausalLM.from_pretrained(tmp_path / "d")).removed_blocks == [[1, 3]]
    for bad, message in ((["--keep-layers", "4"], "removes nothing"), (["--keep-layers", "x"], "layer count"),
                         (["--keep-layers", "1-3"], "first or the last layer")):
        assert main([*common, *bad, "--out", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
    # healing: a short distillation from the compressed student, recorded in its lineage
    healed = tmp_path / "healed"
    assert main(["distill", "--teacher", teacher, "--corpus", corpus, "--init-student", str(out), "--out",
                 str(healed), "--block-size", "16", "--eval-blocks", "2", "--batch-size", "4", "--max-steps", "2",
                 "--no-progress"]) == 0
    lineage = student_lineage(AutoModelForCausalLM.from_pretrained(healed))
    assert lineage.init_student == "student" and lineage.method == "linear-cos" and lineage.distillation_steps == 2
    assert lineage.kept_layers == student_lineage(model).kept_layers
    assert "Started from" in (healed / "README.md").read_text()
    assert main(["distill", "--teacher", teacher, "--corpus", corpus, "--init-student", str(out), "--keep-layers",
                 "0,3", "--out", str(tmp_path / "both")]) == 2
    assert "not both" in capsys.readouterr().err
