"""make_student: kept layers weight for weight, exact logits for a full copy, config and lineage round trip."""

from __future__ import annotations

import pytest
import torch
from tiny_models import ALL_ARCHS, MASKED_ARCHS, make_model
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, GPT2Config, GPT2LMHeadModel

from peft_transfer.errors import PeftTransferError
from peft_transfer.provenance import StudentLineage
from peft_transfer.student.layers import layer_list, make_student, student_lineage

ARCHS = (*ALL_ARCHS, "mistral")


def _ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(5, 400, (2, 14), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ARCHS)
def test_kept_layers_equal_teacher_layers(arch):
    teacher = make_model(arch, num_layers=6)
    keep = [0, 2, 5]
    student = make_student(teacher, keep)
    assert student.config.num_hidden_layers == 3 and len(layer_list(student)) == 3
    for s_idx, t_idx in enumerate(keep):
        s_state = layer_list(student)[s_idx].state_dict()
        t_state = layer_list(teacher)[t_idx].state_dict()
        assert s_state.keys() == t_state.keys()
        for key in t_state:
            assert torch.equal(s_state[key], t_state[key]), (arch, s_idx, key)
            assert s_state[key].data_ptr() != t_state[key].data_ptr()  # a copy, never shared
    t_rest = {k: v for k, v in teacher.state_dict().items() if ".layers." not in k and ".h." not in k
              and ".layer." not in k}
    s_all = student.state_dict()
    for key, value in t_rest.items():
        assert torch.equal(s_all[key], value), key
    # layer_idx of every attention module follows the new position (KV caches index by it)
    for s_idx, layer in enumerate(layer_list(student)):
        idxs = {m.layer_idx for m in layer.modules() if getattr(m, "layer_idx", None) is not None}
        assert idxs <= {s_idx}


@pytest.mark.parametrize("arch", ARCHS)
def test_one_plus_one_student_of_two_layer_teacher_is_exact(arch):
    teacher = make_model(arch, num_layers=2)
    student = make_student(teacher, num_keep=1)
    assert student_lineage(student).kept_layers == [0, 1]
    with torch.no_grad():
        assert torch.equal(student(_ids()).logits, teacher(_ids()).logits)


@pytest.mark.parametrize("arch", ARCHS)
def test_config_and_lineage_round_trip_without_plugin(arch, tmp_path):
    teacher = make_model(arch, num_layers=4)
    student = make_student(teacher)  # default: first 2 + last 2 -> all 4
    student = make_student(teacher, [1, 3])
    student.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.num_hidden_layers == 2
    auto = AutoModelForMaskedLM if arch in MASKED_ARCHS else AutoModelForCausalLM
    loaded = auto.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(teacher)
    with torch.no_grad():
        assert torch.equal(loaded(_ids(1)).logits, student(_ids(1)).logits)
    lineage = student_lineage(loaded)
    assert lineage == StudentLineage(teacher=f"tiny-{arch}", kept_layers=[1, 3], teacher_num_layers=4)


def test_gemma3_layer_types_follow_kept_layers(tmp_path):
    teacher = make_model("gemma3", num_layers=6)  # sliding_window_pattern=2: sliding, full, sliding, ...
    assert teacher.config.layer_types == ["sliding_attention", "full_attention"] * 3
    student = make_student(teacher, [0, 2, 5])
    assert student.config.layer_types == ["sliding_attention", "sliding_attention", "full_attention"]
    student.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).layer_types == student.config.layer_types
    # cached generation (per-layer caches indexed by layer_idx) matches a cache-free forward
    ids = _ids(2)[:1, :12]  # longer than the sliding window (8)
    with torch.no_grad():
        out = student.generate(ids, max_new_tokens=4, do_sample=False, use_cache=True)
        no_cache = student.generate(ids, max_new_tokens=4, do_sample=False, use_cache=False)
    assert torch.equal(out, no_cache)


def test_qwen2_sliding_window_layers_remapped():
    from tiny_models import make_config
    from transformers import Qwen2ForCausalLM

    config = make_config("qwen2", num_layers=6)
    config.use_sliding_window, config.sliding_window, config.max_window_layers = True, 8, 3
    config.layer_types = ["full_attention"] * 3 + ["sliding_attention"] * 3
    teacher = Qwen2ForCausalLM(config).eval()
    student = make_student(teacher, [0, 1, 4, 5])
    assert student.config.layer_types == ["full_attention"] * 2 + ["sliding_attention"] * 2
    assert student.config.max_window_layers == 2


def test_student_of_student_records_original_teacher():
    teacher = make_model("llama", num_layers=6)
    grandchild = make_student(make_student(teacher, [0, 1, 4, 5]), [0, 3])
    assert student_lineage(grandchild).kept_layers == [0, 5]
    assert student_lineage(grandchild).teacher_num_layers == 6
    assert student_lineage(teacher) is None


@pytest.mark.parametrize(("keep", "message"), [
    ([0, 6], "out of range"), ([1, 1], "repeats"), ([], "empty"), ([3, 1], "increasing"), (["a"], "integers"),
])
def test_bad_keep_layers(keep, message):
    with pytest.raises(PeftTransferError, match=message):
        make_student(make_model("llama", num_layers=6), keep)


def test_too_many_default_layers_and_negative_indices():
    teacher = make_model("llama", num_layers=3)
    with pytest.raises(PeftTransferError, match="num_keep"):
        make_student(teacher, num_keep=2)
    assert student_lineage(make_student(teacher, [0, -1])).kept_layers == [0, 2]


def test_unsupported_architecture_names_supported_ones():
    from transformers import OPTConfig, OPTForCausalLM

    model = OPTForCausalLM(OPTConfig(hidden_size=16, ffn_dim=32, num_hidden_layers=2, num_attention_heads=2,
                                     vocab_size=100, word_embed_proj_dim=16))
    with pytest.raises(PeftTransferError, match="Llama, Mistral, Qwen2, Gemma 3"):
        make_student(model)


def test_gpt2_layer_index_scaled_attention_refused():
    model = GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=4, n_head=2, vocab_size=100,
                                       scale_attn_by_inverse_layer_idx=True))
    with pytest.raises(PeftTransferError, match="layer index"):
        make_student(model, [0, 3])


def test_in_memory_student_does_not_pass_for_its_teacher_in_provenance(tokenizer):
    from peft_transfer import create_prompt_model, get_task

    teacher = make_model("llama", num_layers=4)
    student = make_student(teacher, [0, 3])
    prompt = create_prompt_model(student, tokenizer, get_task("rotten_tomatoes"), num_virtual_tokens=2)
    tuned_on = prompt.peft_config["default"].tuned_on
    assert tuned_on != "tiny-llama" and tuned_on.startswith("tiny-llama:student-layers-0-3")
