"""Examples built on the core: the ring-of-8-Gaussians toy GAN (`ring`), its scatter plots (`plots`)
and its commands (`ring_cli`: `ganforge ring`, `ganforge fit --config configs/ganforge/ring.yaml`).

`ring.RingGAN` is the smallest complete `GANModule` subclass (CONTRIBUTING.md).
"""
