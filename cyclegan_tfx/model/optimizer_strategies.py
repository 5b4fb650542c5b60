"""The optimizer strategies (`train.optimizer.strategy`): names and behaviour, in one place.

Each strategy says which networks each optimizer updates, whose settings it uses and whether
it applies the generator update on its own; the config, the training step, the comparison and
the registry all ask the enum rather than compare strings. Paper names: G = generator_ab,
F = generator_ba, D_X = discriminator_a, D_Y = discriminator_b.
"""

from __future__ import annotations

import enum

GENERATORS = ("generator_ab", "generator_ba")
DISCRIMINATORS = ("discriminator_a", "discriminator_b")
NETWORKS = (*GENERATORS, *DISCRIMINATORS)


class OptimizerStrategy(str, enum.Enum):
    """How the four networks are grouped into Adam optimizers.

    - `independent`: four optimizers, each with its own network's settings (TTUR is this with
      faster discriminators).
    - `shared_schedule`: four optimizers sharing one learning-rate schedule object built from
      the `shared` settings.
    - `joint`: two optimizers (both generators / both discriminators), as the reference code.
    - `single`: one optimizer over all four networks; the generator and discriminator
      gradients are applied together after both phases (cyclegan_tfx/model/cyclegan.py says
      why that is a correct CycleGAN).
    """

    INDEPENDENT = "independent"
    SHARED_SCHEDULE = "shared_schedule"
    JOINT = "joint"
    SINGLE = "single"

    def __str__(self) -> str:
        return self.value

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Optimizer name -> the networks it updates."""
        if self in (OptimizerStrategy.INDEPENDENT, OptimizerStrategy.SHARED_SCHEDULE):
            return {name: (name,) for name in NETWORKS}
        if self is OptimizerStrategy.JOINT:
            return {"generators": GENERATORS, "discriminators": DISCRIMINATORS}
        return {"all": NETWORKS}

    @property
    def per_network_settings(self) -> bool:
        """Whether each optimizer uses its network's own settings (else the `shared` ones)."""
        return self is OptimizerStrategy.INDEPENDENT

    @property
    def separate_generator_update(self) -> bool:
        """Whether the generators are updated before the discriminators' phase (all but single)."""
        return self is not OptimizerStrategy.SINGLE

    @property
    def allows_n_critic(self) -> bool:
        """Whether several discriminator updates per generator update are possible."""
        return self.separate_generator_update
