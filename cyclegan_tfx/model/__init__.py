"""CycleGAN networks, losses, optimizers and training loop (Zhu et al. 2017)."""
