"""A training step captured once as a CUDA graph and replayed for every later batch (``model.cuda_graph``).

At batch 64 these networks are too small to keep a GPU busy: it waits for the CPU that launches a few hundred
kernels a batch. A replayed graph launches them all at once. PyTorch's "whole-network capture" recipe
(CUDA semantics, CUDA Graphs): warm up on a side stream, capture, then copy each batch into the captured input.
"""

from collections.abc import Callable

import torch
from pytorch_lightning.core.optimizer import LightningOptimizer

WARMUP_BATCHES = 3  # eager batches before the capture: cuDNN's autotuner, Adam's states and the weight average start


def set_capturable(optimizer: torch.optim.Optimizer, capturable: bool) -> None:
    """Set Adam's ``capturable`` (step counts kept on the weights' device, as a graph needs), with its saved states.

    A checkpoint's optimiser keeps the flag it was saved with; its step counts move where the flag wants them.
    """
    for group in optimizer.param_groups:
        group["capturable"] = capturable
        on_device = capturable or bool(group.get("fused"))
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            if "step" in state:
                state["step"] = state["step"].to(param.device if on_device else "cpu")


def count_step(optimizer: LightningOptimizer) -> None:
    """Count a step made without ``optimizer.step()`` (directly, or by a graph) in Lightning's ``global_step``.

    Lightning's manual-optimisation loop counts through these two callbacks, which it sets on each optimiser (they
    also time ``optimizer_step`` for ``trainer.profiler``, which then reads about 0).
    """
    optimizer._on_before_step()
    optimizer._on_after_step()


class GraphedStep:
    """Calls ``step(real_images) -> stats`` eagerly for the first WARMUP_BATCHES batches, then captures it once as a
    CUDA graph and replays the graph for each later batch (all training batches have one shape: ``drop_last``)."""

    def __init__(self, step: Callable[[torch.Tensor], torch.Tensor], optimizers: list[torch.optim.Optimizer]) -> None:
        self.step = step
        self.optimizers = optimizers
        self.eager_batches = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.real_images = torch.empty(0)  # the graph's input and output, which each replay reuses
        self.stats = torch.empty(0)

    def __call__(self, real_images: torch.Tensor) -> torch.Tensor:
        if self.graph is None and self.eager_batches < WARMUP_BATCHES:
            self.eager_batches += 1
            return self._warm_up(real_images)
        if self.graph is None:
            self._capture(real_images)
        with torch.no_grad():  # R1 makes the input require gradients
            self.real_images.copy_(real_images)
        self.graph.replay()
        return self.stats.clone()

    def _warm_up(self, real_images: torch.Tensor) -> torch.Tensor:
        side_stream = torch.cuda.Stream()
        side_stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side_stream):
            stats = self.step(real_images)
        torch.cuda.current_stream().wait_stream(side_stream)
        return stats

    def _capture(self, real_images: torch.Tensor) -> None:
        """Record one step on ``real_images``'s copy; recording runs nothing, so the caller replays it."""
        self.real_images = real_images.detach().clone()
        for optimizer in self.optimizers:  # the gradients the graph writes are allocated while it is recorded
            optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        # autocast's cache of cast weights would outlive the capture; thread_local: the data loader's threads may
        # use CUDA meanwhile
        autocast = torch.autocast(
            "cuda",
            dtype=torch.get_autocast_dtype("cuda"),
            enabled=torch.is_autocast_enabled("cuda"),
            cache_enabled=False,
        )
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"), autocast:
            self.stats = self.step(self.real_images)
