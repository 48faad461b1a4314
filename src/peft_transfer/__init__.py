"""peft-transfer: private, portable soft prompts (POST, ICML 2025) for the Hugging Face ecosystem.

Every name below is imported on first use, so `import peft_transfer` (and `peft-transfer --help`) does not
load torch, transformers or peft.
"""

from .errors import PeftTransferError

__version__ = "0.1.0"

_LAZY = {
    # prompts, tasks, provenance and evaluation
    "ClassificationResult": "evaluation", "evaluate_classification": "evaluation", "predict_scores": "evaluation",
    "PROVENANCE_NAME": "prompt_config", "TransferablePromptConfig": "prompt_config",
    "create_prompt_model": "prompt_model", "init_prompt_from_text": "prompt_model", "load_prompt": "prompt_model",
    "save_prompt": "handover", "export_prompt": "handover", "label_logits": "prompted_forward",
    "prompt_embeddings": "prompted_forward",
    "DPRecord": "provenance", "StudentLineage": "provenance", "TaskRecord": "provenance",
    "TransferRecord": "provenance", "ClassificationTask": "task", "TokenizedTask": "task", "get_task": "tasks",
    # POST transfer (stage 3)
    "TransferConfig": "transfer_config", "PromptTransferTrainer": "transfer_trainer", "transfer_prompt": "transfer",
    # data owner stage 2: private prompt tuning
    "PrivatePromptConfig": "private_prompt_config", "PrivatePromptTrainer": "private_prompt_trainer",
    "tune_prompt": "private_prompt_trainer",
    "TransferMonitor": "transfer_monitor",
    "compare_prompts": "comparison", "ComparisonRow": "comparison", "eq6_alpha_oracle": "comparison",
    # sequence targets: label words that split, generation tasks
    "class_scores": "label_scoring", "GenerationTask": "generation_task", "evaluate_generation": "generation_eval",
    "generate_texts": "generation", "compare_generation_prompts": "generation_compare",
    # provider stage 1: students and distillation
    "make_student": "student", "student_lineage": "student", "DistillationConfig": "distillation_config",
    "DistillationTrainer": "distillation_trainer", "build_teacher_cache": "teacher_cache",
    "load_teacher_cache": "teacher_cache", "prepare_blocks": "distillation_data",
    "render_student_card": "student_card", "DistillJob": "distillation_run", "run_distillation": "distillation_run",
    # privacy audit: LiRA membership inference and leakage checks
    "run_lira_audit": "audit", "LiraAuditResult": "audit", "find_leaks": "audit",
    # the Hub: push students and prompts, prompt model cards
    "push_prompt_to_hub": "hub", "push_student_to_hub": "hub", "PushResult": "hub",
    "render_prompt_card": "prompt_card",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["PeftTransferError", *_LAZY]
