"""The paper's CycleGAN network (Zhu et al. 2017), as the benchmarks measure it.

ResNet generator with 64 filters and 9 residual blocks, transposed-convolution upsampling,
70x70 PatchGAN discriminator (64 filters, 3 layers); the paper trains it at 128 px (256 px for
most datasets) with batch 1. One definition for `bench/loop.py` and `bench/scale.py`.
"""

from cyclegan_tfx.config import ModelConfig

PAPER_MODEL = ModelConfig(
    generator_filters=64,
    generator_blocks=9,
    discriminator_filters=64,
    discriminator_layers=3,
    upsampling="transpose",
    generator="resnet",
)
PAPER_IMAGE_SIZE = 128
PAPER_BATCH_SIZE = 1
