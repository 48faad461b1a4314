"""peft-transfer: private, portable soft prompts (POST, ICML 2025) for the Hugging Face ecosystem."""

from .errors import PeftTransferError
from .evaluation import ClassificationResult, evaluate_classification, predict_scores
from .prompt_config import PROVENANCE_NAME, TransferablePromptConfig
from .prompt_model import create_prompt_model, init_prompt_from_text, load_prompt, save_prompt
from .prompted_forward import label_logits, prompt_embeddings
from .provenance import DPRecord, StudentLineage, TaskRecord, TransferRecord
from .task import ClassificationTask, TokenizedTask
from .tasks import get_task

__version__ = "0.1.0"

# POST transfer (stage 3): imported on first use, so `import peft_transfer` does not load transformers.Trainer
_LAZY = {
    "TransferConfig": "transfer_config", "PromptTransferTrainer": "transfer_trainer", "transfer_prompt": "transfer",
    # data owner stage 2: private prompt tuning
    "PrivatePromptConfig": "private_prompt_config", "PrivatePromptTrainer": "private_prompt_trainer",
    "tune_prompt": "private_prompt_trainer",
    "alpha_heuristic": "transfer_loss", "TransferMonitor": "transfer_monitor",
    "compare_prompts": "comparison", "ComparisonRow": "comparison",
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
    "render_prompt_card": "prompt_card", "save_prompt_with_card": "prompt_card",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PROVENANCE_NAME", "ClassificationResult", "ClassificationTask", "DPRecord", "PeftTransferError",
    "StudentLineage", "TaskRecord", "TokenizedTask", "TransferRecord", "TransferablePromptConfig",
    "create_prompt_model", "evaluate_classification", "get_task", "init_prompt_from_text", "label_logits",
    "load_prompt", "predict_scores", "prompt_embeddings", "save_prompt", *_LAZY,
]
