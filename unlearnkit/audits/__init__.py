"""Audits of whether a model still carries the forget set, beyond accuracy: the Gaussian Unlearning Score
and loss-threshold membership inference (Pawelczyk et al., ICLR 2025)."""

from .audit import ModelAudit, audit_model
from .detection import roc_auc, tpr_at_fpr
from .gus import (
    CONTROL_DRAWS,
    GaussianUnlearningScore,
    control_noise_scores,
    gaussian_unlearning_score,
    input_gradients,
    two_sided_p_value,
    unlearning_scores,
)
from .mia import MembershipInference, loss_threshold_mia, per_sample_losses

__all__ = ["CONTROL_DRAWS", "GaussianUnlearningScore", "MembershipInference", "ModelAudit", "audit_model",
           "control_noise_scores", "gaussian_unlearning_score", "input_gradients", "loss_threshold_mia",
           "per_sample_losses", "roc_auc", "tpr_at_fpr", "two_sided_p_value", "unlearning_scores"]
