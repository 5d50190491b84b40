"""Audits of whether a model still carries the forget set, beyond accuracy: GUS and membership inference."""

from .detection import roc_auc, tpr_at_fpr
from .gus import GaussianUnlearningScore, gaussian_unlearning_score, input_gradients, unlearning_scores
from .mia import MembershipInference, loss_threshold_mia, per_sample_losses

__all__ = ["GaussianUnlearningScore", "MembershipInference", "gaussian_unlearning_score", "input_gradients",
           "loss_threshold_mia", "per_sample_losses", "roc_auc", "tpr_at_fpr", "unlearning_scores"]
