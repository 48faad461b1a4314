"""Privacy audits of prompts: LiRA membership inference (`run_lira_audit`) and leakage checks (`find_leaks`)."""

from .epsilon_bound import EpsilonBound, clopper_pearson, empirical_epsilon, epsilon_from_rates
from .leakage import Leak, find_leaks
from .lira import balanced_membership, fit_gaussians, leave_one_out_scores, likelihood_ratio, logit_confidence
from .lira_audit import LiraAuditResult, run_lira_audit
from .roc import auc, bootstrap_auc_ci, plot_roc, roc_curve, tpr_at_fpr

__all__ = [
    "EpsilonBound", "Leak", "LiraAuditResult", "auc", "balanced_membership", "bootstrap_auc_ci", "clopper_pearson",
    "empirical_epsilon", "epsilon_from_rates", "find_leaks", "fit_gaussians", "leave_one_out_scores",
    "likelihood_ratio", "logit_confidence", "plot_roc", "roc_curve", "run_lira_audit", "tpr_at_fpr",
]
