"""Labelled grids of generated images, laid out in exact pixels: each row of tiles adds ``TILE_PX`` to the height."""

from pathlib import Path

import torch
from matplotlib.figure import Figure  # the object API draws straight to PNG, with no GUI backend
from torchvision.utils import make_grid

DPI = 100
PADDING = 2
TILE_PX = 2 * (28 + PADDING)  # each 28x28 image and its padding, drawn at twice its size
LEFT_PX, RIGHT_PX, TOP_PX, BOTTOM_PX = 130, 10, 60, 10


def image_grid(rows: list[torch.Tensor], row_labels: list[str], col_labels: list[str], title: str, path: Path) -> None:
    """Save ``rows`` (each ``ncols x 1 x 28 x 28``, values in [-1, 1]) as one labelled PNG figure."""
    nrows, ncols = len(rows), len(rows[0])
    grid = make_grid(torch.cat(rows), nrow=ncols, padding=PADDING, normalize=True, value_range=(-1, 1), pad_value=1)
    grid_w, grid_h = ncols * TILE_PX, nrows * TILE_PX
    width, height = LEFT_PX + grid_w + RIGHT_PX, TOP_PX + grid_h + BOTTOM_PX
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes((LEFT_PX / width, BOTTOM_PX / height, grid_w / width, grid_h / height))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest", aspect="auto")
    centres = [(index + 0.5) * (28 + PADDING) + PADDING / 2 for index in range(max(nrows, ncols))]
    ax.set_yticks(centres[:nrows], row_labels, fontsize=8)
    ax.set_xticks(centres[:ncols], col_labels, fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.suptitle(title, fontsize=10, y=1 - 8 / height, va="top")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
