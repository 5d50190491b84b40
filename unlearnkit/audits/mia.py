"""Loss-threshold membership inference (Yeom et al., "Privacy Risk in Machine Learning", CSF 2018), the
audit Pawelczyk et al. (ICLR 2025) set against the Gaussian Unlearning Score.

Members are the forget set S_f as it was trained on (trigger, flipped label or noise included);
non-members are unseen test points with their labels. A point is called a member when its loss is
below a threshold, so the attack's score is the negative loss. After successful unlearning the forget
set looks like unseen data: TPR at 1% FPR near 0.01 and ROC AUC near 0.5. Pawelczyk et al. show that
this test can say "unlearned" while GUS still detects the poisons.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.core import DatasetInfo, ImageSet
from ..data.pipeline import TrainingSet, predict_logits
from .detection import roc_auc, tpr_at_fpr


def per_sample_losses(model: torch.nn.Module, images: ImageSet | TrainingSet, info: DatasetInfo,
                      batch_size: int = 1024, autocast_bf16: bool = False) -> torch.Tensor:
    """Cross-entropy of each sample against its labels (training sets as trained: hook applied, no
    augmentation), float32 on the CPU."""
    if isinstance(images, TrainingSet):
        logits = predict_logits(model, images.images, info, batch_size, post_augment=images.post_augment,
                                index=images.index, autocast_bf16=autocast_bf16)
    else:
        logits = predict_logits(model, images, info, batch_size, autocast_bf16=autocast_bf16)
    return F.cross_entropy(logits, images.labels.to(logits.device), reduction="none").cpu()


@dataclass
class MembershipInference:
    member_losses: torch.Tensor
    nonmember_losses: torch.Tensor

    def tpr_at_fpr(self, fpr: float = 0.01) -> float:
        """Share of members flagged at the loss threshold that flags at most ``fpr`` of the non-members."""
        return tpr_at_fpr(-self.member_losses, -self.nonmember_losses, fpr)

    @property
    def auc(self) -> float:
        """P(a member's loss < a non-member's loss), ties counted one half."""
        return roc_auc(-self.member_losses, -self.nonmember_losses)

    def summary(self) -> dict[str, float]:
        return {"mia_tpr_at_1pct_fpr": self.tpr_at_fpr(0.01), "mia_auc": self.auc}


def loss_threshold_mia(model: torch.nn.Module, forget: TrainingSet, unseen: ImageSet, info: DatasetInfo,
                       batch_size: int = 1024, autocast_bf16: bool = False) -> MembershipInference:
    """Separate the forget set (as trained) from unseen points by their loss under ``model``."""
    return MembershipInference(per_sample_losses(model, forget, info, batch_size, autocast_bf16),
                               per_sample_losses(model, unseen, info, batch_size, autocast_bf16))
