"""peft-transfer: private, portable soft prompts (POST, ICML 2025) for the Hugging Face ecosystem.

Every name below is imported on first use, so `import peft_transfer` (and `peft-transfer --help`) does not
load torch, transformers or peft.
"""

from ._lazy import lazy_exports
from .errors import PeftTransferError

__version__ = "0.1.0"

_LAZY = {
    # prompts, tasks, provenance and evaluation
    "ClassificationResult": "evaluation.classification", "evaluate_classification": "evaluation.classification",
    "predict_scores": "evaluation.classification", "PROVENANCE_NAME": "prompts.config",
    "TransferablePromptConfig": "prompts.config", "create_prompt_model": "prompts.model",
    "init_prompt_from_text": "prompts.model", "load_prompt": "prompts.model", "save_prompt": "prompts.handover",
    "export_prompt": "prompts.handover", "label_logits": "prompted_forward", "prompt_embeddings": "prompted_forward",
    "DPRecord": "provenance", "StudentLineage": "provenance", "TaskRecord": "provenance",
    "TransferRecord": "provenance", "ClassificationTask": "tasks.classification",
    "TokenizedTask": "tasks.classification", "get_task": "tasks.defaults",
    # POST transfer (stage 3)
    "TransferConfig": "transfer.config", "PromptTransferTrainer": "transfer.trainer",
    "transfer_prompt": "transfer.run",
    # data owner stage 2: private prompt tuning
    "PrivatePromptConfig": "tune.config", "PrivatePromptTrainer": "tune.trainer", "tune_prompt": "tune.trainer",
    "TransferMonitor": "transfer.monitor", "compare_prompts": "evaluation.comparison",
    "ComparisonRow": "evaluation.comparison", "eq6_alpha_oracle": "evaluation.comparison",
    # sequence targets: label words that split, generation tasks
    "class_scores": "tasks.label_scoring", "GenerationTask": "tasks.generation",
    "evaluate_generation": "evaluation.generation", "generate_texts": "tasks.decoding",
    "compare_generation_prompts": "evaluation.comparison", "evaluate": "evaluation.scoring",
    # provider stage 1: students and distillation
    "make_student": "student.layers", "student_lineage": "student.layers", "DistillationConfig": "distill.config",
    "DistillationTrainer": "distill.trainer", "build_teacher_cache": "distill.teacher_cache",
    "load_teacher_cache": "distill.teacher_cache", "prepare_blocks": "distill.data",
    "render_student_card": "student.card", "DistillJob": "distill.run", "run_distillation": "distill.run",
    # privacy audit: LiRA membership inference and leakage checks
    "run_lira_audit": "audit", "LiraAuditResult": "audit", "find_leaks": "audit",
    # the Hub: push students and prompts, prompt model cards
    "push_prompt_to_hub": "prompts.hub", "push_student_to_hub": "prompts.hub", "PushResult": "prompts.hub",
    "render_prompt_card": "prompts.card",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)

__all__ = ["PeftTransferError", *_LAZY]
