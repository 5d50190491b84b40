"""The ``similar`` family: near-duplicates of the forget set, and expanding the identified set.

Two questions meet here. Goel et al. ("Corrective Machine Unlearning", TMLR 2024, Sec. 2.3, 5) show
that with only a fraction alpha of the manipulated set identified, the rest keeps the damage alive,
and ask whether the identified subset can find more of it. Xu et al. ("Forgetting Similar Samples",
arXiv 2601.06938, 2026) show that near-duplicates of the forget set left in the training set keep its
influence alive even after retraining. The notebook ``10_similar_samples`` measures both: how well
each expansion scorer finds S_m \\ S_f (and the near-duplicates) from S_f, against alpha; whether
unlearning the expanded set moves the alpha at which Acc_corr recovers; and how much of S_f's
influence remains after unlearning, against a reference model that never saw S_m or its copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import ConfigError, check_range, from_dict
from ..expansion import ExpansionPolicy, ExpansionSize, scorer_params
from .families import Family, register_family
from .parameters import SMOKE_TRAIN, SeriesParameters
from .schema import stage_field
from .similar_tables import similar_summary

SMOKE_SIMILAR_MANIPULATIONS = [
    {"name": "badnet", "target_class": 0, "patch_size": 3, "fraction": 0.06, "seed": 0},
    {"name": "interclass", "class_a": 3, "class_b": 5, "fraction": 0.1, "seed": 0},
    {"name": "near_duplicates", "base": {"name": "badnet", "fraction": 0.03}, "copies": 3, "seed": 0},
]
SMOKE_SCORERS = {"features": {}, "gradient": {}, "loss_change": {}, "random": {}}


@dataclass(frozen=True)
class SimilarParameters(SeriesParameters):
    """The core series' fields (smoke-sized defaults of their own) plus expansion and influence."""

    run_name: str = stage_field("common", "similar-smoke")
    train_subset: int | None = stage_field("poison", 3000)
    manipulations: list[dict[str, Any]] = stage_field(
        "poison", factory=lambda: [dict(m) for m in SMOKE_SIMILAR_MANIPULATIONS])
    alphas: list[float] = stage_field("poison", factory=lambda: [0.2, 1.0])
    train: dict[str, Any] = stage_field("train", factory=lambda: {**SMOKE_TRAIN, "steps": 120})
    methods: dict[str, Any] = stage_field("unlearn", factory=lambda: {"rewod": {}})
    # expand: how S_f is expanded, scored against the true S_m (and its near-duplicates).
    scorers: dict[str, Any] = stage_field("expand", factory=lambda: {k: dict(v) for k, v in SMOKE_SCORERS.items()})
    expansion_sizes: list[dict[str, Any]] = stage_field("expand", factory=lambda: [{"multiple": 2.0}])
    # similar: unlearning with and without expansion, recovery of Acc_corr, influence left.
    expand_with: list[str] = stage_field("similar", factory=lambda: ["features"])
    """Scorers whose expansions (at every size) are unlearned, beside unlearning S_f alone."""
    recovery_fraction: float = stage_field("similar", 0.9)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.scorers:
            raise ConfigError("scorers must name at least one expansion scorer")
        for name, values in self.scorers.items():
            if values is not None and not isinstance(values, dict):
                raise ConfigError(f"scorers.{name} must be a mapping of scorer parameters, got {values!r}")
            scorer_params(name, values)
        self.sizes()
        for name in self.expand_with:
            if name not in self.scorers:
                raise ConfigError(f"expand_with names {name!r}, which is not among the scorers "
                                  f"({', '.join(self.scorers)})")
        check_range("recovery_fraction", self.recovery_fraction, 0.0, 1.0, low_open=True)

    def sizes(self) -> list[ExpansionSize]:
        if not self.expansion_sizes:
            raise ConfigError("expansion_sizes must list at least one size")
        sizes = []
        for index, values in enumerate(self.expansion_sizes):
            if not isinstance(values, dict):
                raise ConfigError(f"expansion_sizes[{index}] must be a mapping such as {{multiple: 2}}, got {values!r}")
            try:
                sizes.append(from_dict(ExpansionSize, values, prefix=f"expansion_sizes[{index}]."))
            except ConfigError as err:
                message = str(err)
                raise ConfigError(message if message.startswith("expansion_sizes") else
                                  f"expansion_sizes[{index}]: {message}") from err
        if len(set(sizes)) != len(sizes):  # frozen dataclasses compare and hash by value
            raise ConfigError(f"expansion_sizes has repeated sizes: {self.expansion_sizes}")
        return sizes

    def policies(self, scorers: list[str] | None = None) -> list[ExpansionPolicy]:
        """Every scorer (of ``scorers``, default all) with every size."""
        names = list(self.scorers) if scorers is None else scorers
        return [ExpansionPolicy(name, self.scorers[name], size) for name in names for size in self.sizes()]

    def unlearning_policies(self) -> list[ExpansionPolicy | None]:
        """No expansion, then every expansion the unlearning runs use (``expand_with`` x sizes)."""
        return [None, *self.policies(self.expand_with)]


SIMILAR = register_family(Family(
    name="similar",
    parameters=SimilarParameters,
    notebooks={"10_similar_samples": ("common", "poison", "train", "unlearn", "evaluate", "expand", "similar")},
    summary=similar_summary,
    description="near-duplicates of the forget set and expansion of the identified set (Goel et al. 2024; "
                "Xu et al. 2026)",
))
