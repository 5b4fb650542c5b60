"""The study's grid (`study/study.yaml`): what is run, as `dvc exp run -S` overrides.

Every run starts from the reference settings (`reference.settings`, applied to all four
networks), then applies its variant's `set` (per network, or `all`). So a variant differs from
the reference in exactly what its `set` names; its `cause` says that in words.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from cyclegan_tfx.config import NETWORK_NAMES, STUDY_DATASETS, ConfigError

OPTIMIZER = "train.optimizer"
ALL_NETWORKS = "all"
SETTINGS = ("learning_rate", "beta_1", "beta_2", "schedule", "clipnorm")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One optimizer setup.

    Attributes:
        name: Short name (used in experiment names).
        cause: What differs from the reference, in words.
        settings: Per network name (or `all`), the Adam settings that differ.
        datasets: The datasets it runs on.
        versus: Another variant it is also compared with, paired by seed (besides the
            reference), when its `cause` is stated against that one.
    """

    name: str
    cause: str
    settings: dict[str, dict[str, Any]]
    datasets: tuple[str, ...]
    versus: str | None = None


@dataclasses.dataclass(frozen=True)
class Budget:
    """Training budget of every run (`study_run` params)."""

    epochs: float
    decay_epochs: float
    eval_every_epochs: float


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One run: a variant on a dataset with a seed.

    Attributes:
        name: The DVC experiment name (`study-<dataset>-<variant>-e<epochs>-s<seed>`).
        variant: The variant's name.
        dataset: The dataset's name.
        seed: The run's `seed`.
        overrides: `-S` values, `key=value` strings in order.
    """

    name: str
    variant: str
    dataset: str
    seed: int
    overrides: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Grid:
    """The whole study.

    Attributes:
        reference: Name of the variant every other is compared with (paired by seed).
        reference_settings: Adam settings of every network in every run, before the variant's.
        variants: In the file's order.
        seeds: Seeds of every variant.
        budget: Training budget.
    """

    reference: str
    reference_settings: dict[str, Any]
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...]
    budget: Budget

    def variant(self, name: str) -> Variant:
        """The variant called `name`."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise ConfigError(f"unknown variant {name!r}; known: {[v.name for v in self.variants]}")

    def select(
        self,
        variants: list[str] | None = None,
        datasets: list[str] | None = None,
        seeds: list[int] | None = None,
        budget: Budget | None = None,
    ) -> Grid:
        """A smaller grid: only these variants / datasets / seeds, or another budget.

        The reference variant is always kept (every comparison needs it).
        """
        keep = None if variants is None else {self.reference, *variants}
        for name in keep or ():
            self.variant(name)
        unknown = sorted(set(datasets or ()) - set(STUDY_DATASETS))
        if unknown:
            raise ConfigError(f"unknown dataset(s) {unknown}; known: {sorted(STUDY_DATASETS)}")
        chosen = []
        for variant in self.variants:
            if keep is not None and variant.name not in keep:
                continue
            on = tuple(d for d in variant.datasets if datasets is None or d in datasets)
            if on:
                chosen.append(dataclasses.replace(variant, datasets=on))
        return dataclasses.replace(
            self,
            variants=tuple(chosen),
            seeds=tuple(seeds) if seeds is not None else self.seeds,
            budget=budget or self.budget,
        )

    def experiments(self) -> list[Experiment]:
        """Every run, dataset by dataset, seed by seed (the reference first in each seed)."""
        runs = []
        datasets = [d for d in STUDY_DATASETS if any(d in v.datasets for v in self.variants)]
        for dataset in datasets:
            for seed in self.seeds:
                for variant in self.variants:
                    if dataset in variant.datasets:
                        runs.append(self._experiment(variant, dataset, seed))
        return runs

    def _experiment(self, variant: Variant, dataset: str, seed: int) -> Experiment:
        settings = {name: dict(self.reference_settings) for name in NETWORK_NAMES}
        for network, changes in variant.settings.items():
            for name in NETWORK_NAMES if network == ALL_NETWORKS else (network,):
                settings[name].update(changes)
        overrides = [f"seed={seed}", f"{OPTIMIZER}.strategy=independent"]
        for name in NETWORK_NAMES:
            for key in SETTINGS:
                value = settings[name].get(key)
                text = "null" if value is None else value
                overrides.append(f"{OPTIMIZER}.networks.{name}.{key}={text}")
        budget = self.budget
        overrides += [
            f"study_run.dataset={dataset}",
            f"study_run.epochs={budget.epochs:g}",
            f"study_run.decay_epochs={budget.decay_epochs:g}",
            f"study_run.eval_every_epochs={budget.eval_every_epochs:g}",
        ]
        name = f"study-{dataset}-{variant.name}-e{budget.epochs:g}-s{seed}".replace(".", "p")
        return Experiment(name, variant.name, dataset, seed, tuple(overrides))


def load_grid(path: str | Path) -> Grid:
    """Reads and checks a grid file.

    Raises:
        ConfigError: On a missing file, unknown networks, settings or datasets, or a missing
            reference variant.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no study grid at {path}")
    data = yaml.safe_load(path.read_text()) or {}
    try:
        reference = data["reference"]
        seeds = tuple(int(s) for s in data["seeds"])
        budget = Budget(**{k: float(v) for k, v in data["budget"].items()})
        datasets = tuple(data.get("datasets", list(STUDY_DATASETS)))
        variants = tuple(
            Variant(
                name,
                str(spec.get("cause", "")),
                dict(spec.get("set") or {}),
                tuple(spec.get("datasets", datasets)),
                spec.get("versus"),
            )
            for name, spec in data["variants"].items()
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: malformed study grid ({error!r})") from None
    _check_settings(reference["settings"], f"{path}: reference.settings")
    for variant in variants:
        for network, changes in variant.settings.items():
            if network not in (*NETWORK_NAMES, ALL_NETWORKS):
                raise ConfigError(f"{path}: variant {variant.name}: unknown network {network!r}")
            _check_settings(changes, f"{path}: variant {variant.name}.{network}")
        unknown = sorted(set(variant.datasets) - set(STUDY_DATASETS))
        if unknown:
            raise ConfigError(f"{path}: variant {variant.name}: unknown dataset(s) {unknown}")
    grid = Grid(reference["variant"], dict(reference["settings"]), variants, seeds, budget)
    grid.variant(grid.reference)
    names = {v.name for v in variants}
    for variant in variants:
        if variant.versus is not None and (
            variant.versus not in names or variant.versus in (variant.name, grid.reference)
        ):
            raise ConfigError(
                f"{path}: variant {variant.name}: versus {variant.versus!r} must name another "
                "variant than itself and the reference"
            )
    if len(seeds) < 2:
        raise ConfigError(f"{path}: intervals over seeds need at least 2 seeds, got {seeds}")
    return grid


def _check_settings(settings: Any, where: str) -> None:
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: expected a mapping of Adam settings")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {list(SETTINGS)}")
