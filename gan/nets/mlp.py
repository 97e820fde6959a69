"""The teacher's original MLP GAN, layer for layer as printed in the lab handout."""

import torch
from torch import nn

from gan.errors import require_int

IMAGE_SIZE = 28 * 28


class Generator(nn.Module):
    """Maps a latent vector to a 1x28x28 image in [-1, 1]."""

    def __init__(self, latent_dim: int = 100, hidden_dim: int = 128) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        require_int("model.generator.hidden_dim", hidden_dim, least=1)
        self.fc1 = nn.Linear(latent_dim, hidden_dim)
        self.nonlin1 = nn.LeakyReLU(0.2)
        self.fc2 = nn.Linear(hidden_dim, IMAGE_SIZE)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        pixels = torch.tanh(self.fc2(self.nonlin1(self.fc1(z))))
        return pixels.view(-1, 1, 28, 28)


class Discriminator(nn.Module):
    """Maps a 1x28x28 image to one real/fake logit (the loss applies the sigmoid)."""

    def __init__(self, hidden_dim: int = 128) -> None:
        super().__init__()
        require_int("model.discriminator.hidden_dim", hidden_dim, least=1)
        self.fc1 = nn.Linear(IMAGE_SIZE, hidden_dim)
        self.nonlin1 = nn.LeakyReLU(0.2)
        self.fc2 = nn.Linear(hidden_dim, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.nonlin1(self.fc1(images.flatten(1))))
