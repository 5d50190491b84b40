"""Both audits of one model: loss-threshold membership inference (every manipulation) and the Gaussian
Unlearning Score (manipulations that carry noise), as table columns and as per-sample arrays.

Members of the MIA are the forget set S_f as trained (all of S_m when no forget set is given, e.g. for
the original model); non-members are the whole test set. GUS scores every poison of S_m (one backward
pass each, at its clean input) so the identified S_f and the unidentified rest S_m \\ S_f are reported
apart; its control scores are fresh noise on the same inputs (Pawelczyk et al., ICLR 2025).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..data.core import DataSplits
from ..manipulations.base import Manipulated
from ..manipulations.gaussian import stream_seed
from ..metrics import Predictions
from .gus import CONTROL_DRAWS, GaussianUnlearningScore, gaussian_unlearning_score
from .mia import MembershipInference, per_sample_losses


@dataclass
class ModelAudit:
    mia: MembershipInference
    in_forget: torch.Tensor
    """Boolean mask over S_m (in the order of ``Manipulated.manipulated``): the audited forget set."""
    gus: GaussianUnlearningScore | None = None
    """``I_z`` of every poison of S_m (aligned with ``in_forget``) and its controls; None without noise."""

    @property
    def gus_forget(self) -> GaussianUnlearningScore | None:
        return None if self.gus is None else self.gus.subset(self.in_forget)

    @property
    def gus_unidentified(self) -> GaussianUnlearningScore | None:
        return None if self.gus is None else self.gus.subset(~self.in_forget)

    def row(self) -> dict[str, float]:
        """``mia_*`` columns, and ``gus_*`` (on S_f) plus ``gus_unidentified_*`` (on S_m \\ S_f) with noise."""
        row: dict[str, Any] = self.mia.summary()
        if self.gus is not None:
            row.update(self.gus_forget.summary("gus"))
            rest = self.gus_unidentified
            row["gus_unidentified_mean"] = rest.mean
            row["gus_unidentified_p_value"] = rest.p_value
        return row

    def tensors(self) -> dict[str, torch.Tensor]:
        tensors = {"mia_member_losses": self.mia.member_losses, "mia_nonmember_losses": self.mia.nonmember_losses,
                   "in_forget": self.in_forget}
        if self.gus is not None:
            tensors.update(gus_scores=self.gus.scores, gus_control_scores=self.gus.control_scores)
        return tensors

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> ModelAudit:
        gus = (GaussianUnlearningScore(tensors["gus_scores"], tensors["gus_control_scores"])
               if "gus_scores" in tensors else None)
        return cls(MembershipInference(tensors["mia_member_losses"], tensors["mia_nonmember_losses"]),
                   tensors["in_forget"].bool(), gus)


def audit_model(model: torch.nn.Module, splits: DataSplits, manipulated: Manipulated,
                forget: torch.Tensor | None = None, predictions: Predictions | None = None,
                autocast_bf16: bool = False, control_draws: int = CONTROL_DRAWS,
                batch_size: int = 256) -> ModelAudit:
    """Audit ``model`` for the forget set ``forget`` (positions in the training set; None: all of S_m).

    ``predictions`` of the same model (with losses) spare the MIA its forward passes.
    """
    positions = manipulated.manipulated
    in_forget = (torch.ones(len(positions), dtype=torch.bool) if forget is None
                 else torch.isin(positions.cpu(), torch.as_tensor(forget).cpu()))
    if predictions is None or predictions.test_losses is None or predictions.manipulated_train_losses is None:
        member = per_sample_losses(model, manipulated.train.subset(positions), splits.info,
                                   autocast_bf16=autocast_bf16)
        nonmember = per_sample_losses(model, splits.test, splits.info, autocast_bf16=autocast_bf16)
    else:
        member, nonmember = predictions.manipulated_train_losses.cpu(), predictions.test_losses.cpu()
    mia = MembershipInference(member[in_forget], nonmember)
    gus = None
    if manipulated.noise is not None:
        clean = manipulated.clean_pixels(splits, positions).float() / 255
        gus = gaussian_unlearning_score(
            model, clean, manipulated.train.labels[positions], manipulated.noise, manipulated.noise_scale,
            splits.info, stream_seed(manipulated.noise_seed or 0, "gaussian-control"), control_draws, batch_size)
    return ModelAudit(mia, in_forget, gus)
