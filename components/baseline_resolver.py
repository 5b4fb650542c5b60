"""The baseline the Evaluator compares with: the newest blessed model other than the candidate.

TFX's `LatestBlessedModelStrategy` returns the newest blessed model, which after a push is the
candidate itself whenever the Trainer is cached. The first rerun after a push then has an input
the blessing run did not have (the model as its own baseline), so the Evaluator runs again only
to compare the model with itself (about 7 minutes of `make run`'s Evaluator), and the Pusher
runs after it. Leaving the candidate out keeps the baseline of a cached model the one it was
blessed against, so a rerun on the same data and code is all cache hits, and the gate's "vs
baseline" checks always compare two different models.

Kubeflow: the V2 compiler turns only TFX's two stock strategies into ML Metadata queries
(tfx/orchestration/kubeflow/v2/step_builder.py), so the compiled pipeline uses the stock one
(`create_pipeline(..., baseline_excludes_candidate=False)`); there a rerun of a cached model
compares it with itself once, as stock TFX does.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)

CANDIDATE_KEY = "candidate"


class LatestBlessedOtherModelStrategy(LatestBlessedModelStrategy):
    """The newest blessed Model that is not the candidate (the `candidate` input channel)."""

    def resolve_artifacts(
        self, store, input_dict: dict[str, list[types.Artifact]]
    ) -> dict[str, list[types.Artifact]] | None:
        """Resolves {model, model_blessing} as the stock strategy does, without the candidate.

        Args:
            store: The ML Metadata store.
            input_dict: `model` (every Model), `model_blessing` (every ModelBlessing) and
                `candidate` (this run's Trainer output).

        Returns:
            The newest blessed other model and its blessing (empty lists if there is none),
            and the candidate passed through.
        """
        candidate = list(input_dict.get(CANDIDATE_KEY, []))
        excluded = {artifact.id for artifact in candidate}
        others = {
            "model": [m for m in input_dict["model"] if m.id not in excluded],
            "model_blessing": list(input_dict["model_blessing"]),
        }
        resolved = super().resolve_artifacts(store, others)
        if resolved is None:
            return None
        return {**resolved, CANDIDATE_KEY: candidate}
