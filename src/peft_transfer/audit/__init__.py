"""Privacy audits of prompts: LiRA membership inference (`run_lira_audit`) and leakage checks (`find_leaks`).

Names are imported on first use (`lira_audit` loads torch and the tuning stage)."""

from .._lazy import lazy_exports

_LAZY = {
    "EpsilonBound": "epsilon_bound", "clopper_pearson": "epsilon_bound", "empirical_epsilon": "epsilon_bound",
    "epsilon_from_rates": "epsilon_bound", "Leak": "leakage", "find_leaks": "leakage",
    "balanced_membership": "lira", "fit_gaussians": "lira", "leave_one_out_scores": "lira",
    "likelihood_ratio": "lira", "logit_confidence": "lira", "LiraAuditResult": "lira_audit",
    "run_lira_audit": "lira_audit", "auc": "roc", "bootstrap_auc_ci": "roc", "plot_roc": "roc", "roc_curve": "roc",
    "tpr_at_fpr": "roc",
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
__all__ = sorted(_LAZY)
