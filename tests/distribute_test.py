"""tf.distribute: MirroredStrategy over two replicas trains like one device on the global batch.

No machine here has several GPUs, so the test splits the CPU into two logical devices (which
must happen before TensorFlow initialises, hence a fresh process) and mirrors over them.
Only the all-reduce's floating-point summation order differs, but Adam's first updates are about
lr * sign(gradient), so a near-zero gradient whose sign flips moves that weight by up to
2 * lr per step. Tolerance after three steps: max |difference| < 3 * 2 * max lr (2.4e-3),
mean |difference| < 1e-5, losses within 1e-4.
"""

import subprocess
import sys

from conftest import REPO_ROOT

_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
from pathlib import Path
from conftest import tiny_config
from cyclegan_tfx.model.cyclegan import CycleGAN

config = tiny_config(Path("."), batch_size=4)
rng = np.random.default_rng(0)
batches = [rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32) for _ in range(6)]

def train(distribution):
    gan = CycleGAN(config.model, config.train, 3, seed=0, image_size=16, distribution=distribution)
    for step in range(3):
        losses = gan.train_step(batches[2 * step], batches[2 * step + 1])
    networks = ("generator_ab", "discriminator_b")
    weights = [w for n in networks for w in gan.networks.get(n).get_weights()]
    return gan.replicas, losses, weights

mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
replicas, losses_m, weights_m = train(mirrored)
_, losses_d, weights_d = train(tf.distribute.OneDeviceStrategy("/cpu:0"))
assert replicas == 2, replicas
differences = np.concatenate([np.abs(a - b).ravel() for a, b in zip(weights_m, weights_d)])
worst, mean = float(differences.max()), float(differences.mean())
assert worst < 3 * 2 * 4e-4 and mean < 1e-5, (worst, mean)
for key in losses_d:
    assert abs(losses_m[key] - losses_d[key]) < 1e-4, (key, losses_m[key], losses_d[key])
print("OK", worst, mean)
"""


def test_mirrored_strategy_matches_one_device():
    script = _SCRIPT.format(tests=str(REPO_ROOT / "tests"))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.startswith("OK")
