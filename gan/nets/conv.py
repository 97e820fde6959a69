"""The lab's convolutional GAN (extra credit), following the handout's code.

As in the handout, activations are functional (so ``print`` shows only the layers) and the
discriminator's LeakyReLU uses PyTorch's default slope of 0.01.
"""

import torch
import torch.nn.functional as F
from torch import nn


class Generator(nn.Module):
    """Linear to 256x7x7, then three transposed convolutions up to a 1x28x28 image in [-1, 1]."""

    def __init__(self, latent_dim: int = 100) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.linear1 = nn.Linear(latent_dim, 256 * 7 * 7)
        self.bn1 = nn.BatchNorm1d(256 * 7 * 7)
        self.deconv1 = nn.ConvTranspose2d(256, 128, kernel_size=3, stride=1, padding=1)
        self.bn2 = nn.BatchNorm2d(128)
        self.deconv2 = nn.ConvTranspose2d(128, 64, kernel_size=4, stride=2, padding=1)
        self.bn3 = nn.BatchNorm2d(64)
        self.deconv3 = nn.ConvTranspose2d(64, 1, kernel_size=4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.bn1(F.relu(self.linear1(z))).view(-1, 256, 7, 7)
        x = self.bn2(F.relu(self.deconv1(x)))
        x = self.bn3(F.relu(self.deconv2(x)))
        return torch.tanh(self.deconv3(x))


class Discriminator(nn.Module):
    """Two strided convolutions down to 128x7x7, then one real/fake logit."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.conv2 = nn.Conv2d(64, 128, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(128)
        self.fc = nn.Linear(128 * 7 * 7, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(images))
        x = F.leaky_relu(self.bn1(self.conv2(x)))
        return self.fc(x.flatten(1))
