"""The lab's networks: printed structure character for character, and output shapes."""

from pathlib import Path

import pytest
import torch

from gan.nets import conv, mlp

MLP_TEXT = """\
Discriminator(
  (fc1): Linear(in_features=784, out_features=128, bias=True)
  (nonlin1): LeakyReLU(negative_slope=0.2)
  (fc2): Linear(in_features=128, out_features=1, bias=True)
)
Generator(
  (fc1): Linear(in_features=100, out_features=128, bias=True)
  (nonlin1): LeakyReLU(negative_slope=0.2)
  (fc2): Linear(in_features=128, out_features=784, bias=True)
)"""


def test_mlp_prints_exactly_as_the_lab() -> None:
    assert f"{mlp.Discriminator()}\n{mlp.Generator()}" == MLP_TEXT


def test_the_readme_shows_the_mlp_as_a_run_prints_it() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"```\n{mlp.Generator()}\n{mlp.Discriminator()}\n```" in readme  # models.txt: print(G), then print(D)


def test_conv_layers_follow_the_lab_code() -> None:
    generator, discriminator = conv.Generator(), conv.Discriminator()
    assert [name for name, _ in generator.named_children()] == [
        "linear1", "bn1", "deconv1", "bn2", "deconv2", "bn3", "deconv3"
    ]  # fmt: skip
    assert repr(generator.linear1) == "Linear(in_features=100, out_features=12544, bias=True)"
    assert repr(generator.deconv1) == "ConvTranspose2d(256, 128, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert repr(generator.deconv2) == "ConvTranspose2d(128, 64, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))"
    assert repr(generator.deconv3) == "ConvTranspose2d(64, 1, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))"
    assert generator.bn1.num_features == 12544 and generator.bn2.num_features == 128
    assert generator.bn3.num_features == 64
    assert [name for name, _ in discriminator.named_children()] == ["conv1", "conv2", "bn1", "fc"]
    assert repr(discriminator.conv1) == "Conv2d(1, 64, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)"
    assert repr(discriminator.conv2) == "Conv2d(64, 128, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)"
    assert discriminator.bn1.num_features == 128
    assert repr(discriminator.fc) == "Linear(in_features=6272, out_features=1, bias=True)"


@pytest.mark.parametrize("nets", [mlp, conv], ids=["mlp", "conv"])
def test_output_shapes_and_range(nets) -> None:
    generator, discriminator = nets.Generator(latent_dim=100), nets.Discriminator()
    images = generator(torch.randn(5, 100) * 10)
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1
    assert discriminator(images).shape == (5, 1)


def test_latent_size_is_configurable() -> None:
    assert mlp.Generator(latent_dim=16)(torch.randn(3, 16)).shape == (3, 1, 28, 28)
    assert conv.Generator(latent_dim=16)(torch.randn(3, 16)).shape == (3, 1, 28, 28)
