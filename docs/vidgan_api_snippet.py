import numpy as np
import torch

from vidgan import FramePredictor

p = FramePredictor.from_checkpoint("runs/vidgan/moving_mnist_tiny/checkpoints/last.ckpt", device="cpu")
sequences = np.load("data/mnist/test.npy")  # (20, N, 64, 64) uint8, the mnist_test_seq.npy layout

context = sequences[: p.context_frames, 0, :, :, None]  # numpy uint8 (T, H, W, C)
out = p.predict(context, future_frames=10, num_samples=4, seed=0)
print(out.shape, out.dtype)  # (4, 10, 64, 64, 1) uint8

batch = torch.from_numpy(sequences[: p.context_frames, :8]).float().div(255)  # (T, B, H, W)
batch = batch.permute(1, 0, 2, 3).unsqueeze(2)  # torch float (B, T, C, H, W) in [0, 1]
out = p.predict(batch, future_frames=10, num_samples=4, seed=0)  # 10 > the trained horizon: rolled out
print(tuple(out.shape), out.dtype)  # (8, 4, 10, 1, 64, 64) torch.float32
