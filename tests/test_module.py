"""The GAN LightningModule: one training step, which parameters each optimiser changes, checkpoints."""

import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from pytorch_lightning import Callback, Trainer
from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.strategies import DDPStrategy, SingleDeviceStrategy
from torch.optim.swa_utils import AveragedModel

import gan
from gan.checkpoint import AtomicCheckpointIO
from gan.data import FashionMNISTDataModule
from gan.errors import UserError, first_line
from gan.graphs import set_capturable
from gan.module import GAN, discriminator_loss, ema_with_warmup, generator_loss, r1_penalty, update_average
from gan.nets import conv


def make_gan(model: str) -> GAN:
    return GAN(
        generator={"_target_": f"gan.nets.{model}.Generator", "latent_dim": 100},
        discriminator={"_target_": f"gan.nets.{model}.Discriminator"},
    )


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(module: torch.nn.Module, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(p, b) for p, b in zip(module.parameters(), before, strict=True))


class PhaseRecorder(GAN):
    """Records, around each optimiser step, which network's parameters the step changed."""

    def configure_optimizers(self):
        optimizers = super().configure_optimizers()
        self.phases: list[tuple[str, bool, bool]] = []
        for name, optimizer in zip(("G", "D"), optimizers, strict=True):
            optimizer.step = self._recording(name, optimizer.step)
        return optimizers

    def _recording(self, name, step):
        def recorded_step(*args, **kwargs):
            g_before, d_before = snapshot(self.generator), snapshot(self.discriminator)
            result = step(*args, **kwargs)
            self.phases.append((name, changed(self.generator, g_before), changed(self.discriminator, d_before)))
            return result

        return recorded_step


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_one_batch_updates_d_then_g_each_with_its_own_optimiser(model: str, fake_data_root: Path) -> None:
    module = PhaseRecorder(
        generator={"_target_": f"gan.nets.{model}.Generator", "latent_dim": 100},
        discriminator={"_target_": f"gan.nets.{model}.Discriminator"},
    )
    g_start, d_start = snapshot(module.generator), snapshot(module.discriminator)
    datamodule = FashionMNISTDataModule(root=str(fake_data_root), system_dir="/nonexistent", download=False)
    trainer = Trainer(
        max_epochs=1, limit_train_batches=1, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(module, datamodule=datamodule)
    # D first, changing only D; then G, changing only G
    assert module.phases == [("D", False, True), ("G", True, False)]
    assert changed(module.generator, g_start) and changed(module.discriminator, d_start)
    assert trainer.global_step == 2  # Lightning counts both optimiser steps
    assert trainer.fit_loop.epoch_loop._batches_that_stepped == 1  # logging counts batches
    for name in ("loss/d", "loss/g", "D(x)", "D(G(z))"):
        assert torch.isfinite(trainer.callback_metrics[f"{name}_epoch"])


def test_fused_adam_makes_the_same_update_up_to_rounding(fake_data_root: Path) -> None:
    trained = {}
    for fused in (False, True):
        torch.manual_seed(0)  # the same weights, batches and noise
        module = GAN(
            generator={"_target_": "gan.nets.mlp.Generator", "latent_dim": 100},
            discriminator={"_target_": "gan.nets.mlp.Discriminator"},
            fused_adam=fused,
        )
        datamodule = FashionMNISTDataModule(root=str(fake_data_root), system_dir="/nonexistent", download=False)
        trainer = Trainer(
            max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False, enable_progress_bar=False
        )
        trainer.fit(module, datamodule=datamodule)
        assert [opt.param_groups[0]["fused"] for opt in trainer.optimizers] == [fused or None] * 2  # None: torch's
        trained[fused] = snapshot(module)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(trained[False], trained[True], strict=True))


class StepHookRecorder(Callback):
    """A callback with Lightning's backward and optimiser-step hooks, which only Lightning's wrappers call."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def on_after_backward(self, trainer: Trainer, pl_module: GAN) -> None:
        self.calls.append("backward")

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: GAN, optimizer: torch.optim.Optimizer) -> None:
        self.calls.append("step")


def test_the_direct_step_trains_as_lightnings_wrappers_and_gives_way_to_their_hooks(fake_data_root: Path) -> None:
    trained, recorder = {}, StepHookRecorder()
    for with_hooks in (False, True):
        torch.manual_seed(0)  # the same weights, batches and noise
        module = make_gan("mlp")
        datamodule = FashionMNISTDataModule(
            root=str(fake_data_root), system_dir="/nonexistent", download=False, batch_size=8
        )
        trainer = Trainer(
            max_epochs=1,
            limit_train_batches=3,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            callbacks=[recorder] if with_hooks else [],
        )
        trainer.fit(module, datamodule=datamodule)
        assert (module._direct_step is None) == with_hooks  # plain loss.backward() and step() unless hooks want them
        assert trainer.global_step == 2 * 3
        trained[with_hooks] = snapshot(module)
    assert recorder.calls == ["backward", "step"] * 2 * 3
    assert all(torch.equal(a, b) for a, b in zip(trained[False], trained[True], strict=True))


def test_ddp_steps_go_through_lightnings_wrappers_even_with_one_process() -> None:
    module = make_gan("mlp")
    module._trainer = types.SimpleNamespace(strategy=DDPStrategy(), scaler=None, callbacks=[])  # world_size unread
    assert module._direct_step_obstacle() == "DDPStrategy prepares each backward pass (DDP exchanges gradients)"
    module._trainer.strategy = SingleDeviceStrategy(torch.device("cpu"))
    assert module._direct_step_obstacle() is None


def test_fixed_noise_is_seeded_and_a_buffer() -> None:
    first, second = make_gan("mlp"), make_gan("mlp")
    assert torch.equal(first.fixed_noise, second.fixed_noise)
    assert "fixed_noise" in first.state_dict()
    other_seed = GAN(first.hparams.generator, first.hparams.discriminator, noise_seed=1)
    assert not torch.equal(first.fixed_noise, other_seed.fixed_noise)


def test_sample_fixed_uses_eval_mode_and_restores_training_mode() -> None:
    module = make_gan("conv")
    module.train()
    images = module.sample_fixed()
    assert images.shape == (64, 1, 28, 28)
    assert module.generator.training
    module.generator.eval()
    assert torch.allclose(images, module.generator(module.fixed_noise))


def save_checkpoint(module: GAN, path: Path) -> Path:
    """``module``'s checkpoint, as a run saves it."""
    trainer = Trainer(logger=False, enable_checkpointing=False, max_epochs=1)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return path


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_load_generator_rebuilds_from_the_checkpoint_alone(model: str, tmp_path: Path) -> None:
    module = make_gan(model)
    generator = gan.load_generator(save_checkpoint(module, tmp_path / "model.ckpt"))
    assert type(generator) is type(module.generator) and not generator.training
    module.generator.eval()
    z = torch.randn(4, 100)
    assert torch.equal(generator(z), module.generator(z))


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("gpu", "device must be a torch device such as 'cpu', 'cuda' or 'cuda:0', got 'gpu'"),
        ("cuda", "needs an NVIDIA GPU"),
        ("meta", "device 'meta' holds no weights; use device='cpu' or 'cuda'"),
        ("hpu", "cannot put the generator on device 'hpu': No module named 'torch.hpu'"),
    ],
)
def test_load_generator_names_a_bad_device_not_the_good_checkpoint(device: str, message: str, tmp_path: Path) -> None:
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = save_checkpoint(make_gan("mlp"), tmp_path / "model.ckpt")
    with pytest.raises(UserError, match=re.escape(message)):
        gan.load_generator(path, device)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "the checkpoint must be the path of a .ckpt file, got ''"),
        (None, "the checkpoint must be the path of a .ckpt file, got None"),
        (123, "the checkpoint must be the path of a .ckpt file, got 123"),
        ("/dev/null", "/dev/null is not a file; give a .ckpt file"),
    ],
)
def test_load_generator_of_no_path_or_no_file_is_one_clear_line(path: object, message: str) -> None:
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        gan.load_generator(path)


def test_load_generator_expands_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_checkpoint(make_gan("mlp"), tmp_path / "model.ckpt")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not gan.load_generator("~/model.ckpt").training


@pytest.mark.parametrize("entry", ["global_step", "loops"])
def test_a_checkpoint_with_a_negative_count_is_damaged(entry: str, tmp_path: Path) -> None:
    path = save_checkpoint(make_gan("mlp"), tmp_path / "model.ckpt")
    checkpoint = torch.load(path, weights_only=False)
    if entry == "global_step":
        checkpoint["global_step"] = -5
    else:
        checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] = -1
    torch.save(checkpoint, path)
    with pytest.raises(UserError, match=re.escape(f"ckpt is a damaged checkpoint of this project: its '{entry}'")):
        gan.load_generator(path)


def test_load_generator_refuses_a_diverged_generator(tmp_path: Path) -> None:
    path = save_checkpoint(make_gan("mlp"), tmp_path / "model.ckpt")
    checkpoint = torch.load(path, weights_only=False)
    next(value for key, value in checkpoint["state_dict"].items() if key.startswith("generator."))[0] = float("nan")
    torch.save(checkpoint, path)
    with pytest.raises(UserError, match=re.escape(f"the generator in {path} holds NaN or infinite weights")):
        gan.load_generator(path)


def test_a_checkpoint_without_generator_weights_gets_the_whole_reason(tmp_path: Path) -> None:
    path = save_checkpoint(make_gan("mlp"), tmp_path / "model.ckpt")
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["state_dict"] = {key: value for key, value in checkpoint["state_dict"].items() if "generator" not in key}
    torch.save(checkpoint, path)
    with pytest.raises(UserError) as error:
        gan.load_generator(path)
    assert str(error.value).startswith(  # the first line of torch's message ends in ':', the reason is on the next
        "checkpoint holds no generator this code can rebuild: Error(s) in loading state_dict for Generator: Missing"
    )
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("message", "line"),
    [
        (  # Hydra's blocklist message, wrapped mid-sentence
            "Target 'os.system' is blocklisted because it allows\nconfig data to control\nHYDRA_OVERRIDE.",
            "Target 'os.system' is blocklisted because it allows config data to control HYDRA_OVERRIDE.",
        ),
        (
            "Error(s) in loading state_dict for G:\n\tMissing key(s)",
            "Error(s) in loading state_dict for G: Missing key(s)",
        ),
        ("Interpolation key 'b' not found\n    full_key: a\n    object_type=dict", "Interpolation key 'b' not found"),
        ("Weights only load failed.\nPlease file an issue", "Weights only load failed."),
    ],
)
def test_first_line_joins_a_wrapped_sentence_but_not_the_lines_after_it(message: str, line: str) -> None:
    assert first_line(RuntimeError(message)) == line


def test_load_generator_of_a_folder_or_another_projects_checkpoint_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(UserError, match=f"^{re.escape(str(tmp_path))} is a folder; give a .ckpt file"):
        gan.load_generator(tmp_path)
    other_project = types.ModuleType("other_project")  # a checkpoint that pickles another project's class
    other_project.Model = type("Model", (), {"__module__": "other_project"})
    monkeypatch.setitem(sys.modules, "other_project", other_project)
    torch.save({"model": other_project.Model()}, tmp_path / "other.ckpt")
    monkeypatch.delitem(sys.modules, "other_project")
    with pytest.raises(
        UserError, match="other.ckpt is not a checkpoint of this project: No module named 'other_project'"
    ):
        gan.load_generator(tmp_path / "other.ckpt")


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("crash while saving")


def test_checkpoint_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)
    with pytest.raises(RuntimeError, match="crash while saving"):
        io.save_checkpoint({"step": 2, "broken": Unpicklable()}, path)
    assert torch.load(path) == {"step": 1}  # the previous checkpoint, intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no partial file left behind
    io.save_checkpoint({"step": 3}, path)
    assert torch.load(path) == {"step": 3}


@pytest.mark.parametrize(("scaling", "expected_lr"), [("none", 2e-4), ("linear", 8e-4), ("sqrt", 4e-4)])
def test_lr_scaling_for_larger_batches(scaling: str, expected_lr: float) -> None:
    module = GAN(
        {"_target_": "gan.nets.mlp.Generator"}, {"_target_": "gan.nets.mlp.Discriminator"},
        batch_size=256, lr_scaling=scaling,
    )  # fmt: skip
    assert [opt.param_groups[0]["lr"] for opt in module.configure_optimizers()] == pytest.approx([expected_lr] * 2)


def test_a_learning_rate_scaled_above_1_is_refused() -> None:
    with pytest.raises(
        UserError, match=r"multiplies the learning rates by 100 \(batch 6400 against 64\): 0.1 becomes 10"
    ):
        GAN(
            {"_target_": "gan.nets.mlp.Generator"}, {"_target_": "gan.nets.mlp.Discriminator"},
            lr=0.1, batch_size=6400, lr_scaling="linear",
        )  # fmt: skip


def test_unknown_lr_scaling_is_refused() -> None:
    with pytest.raises(UserError, match="model.lr_scaling must be one of none, linear, sqrt, got 'cubic'"):
        GAN({"_target_": "gan.nets.mlp.Generator"}, {"_target_": "gan.nets.mlp.Discriminator"}, lr_scaling="cubic")


def test_channels_last_keeps_the_maths(fake_data_root: Path) -> None:
    plain, fast = make_gan("conv"), make_gan("conv")
    fast.load_state_dict(plain.state_dict())
    fast.hparams.channels_last = True
    fast.on_fit_start()
    assert fast.discriminator.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    plain.eval(), fast.eval()
    z = torch.randn(8, 100)
    torch.testing.assert_close(fast.generator(z), plain.generator(z), atol=1e-5, rtol=1e-4)
    images = plain.generator(z).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast.discriminator(images), plain.discriminator(images), atol=1e-5, rtol=1e-4)


def test_recipe_options_reach_the_optimisers_and_losses() -> None:
    module = GAN({"_target_": "gan.nets.mlp.Generator"}, {"_target_": "gan.nets.mlp.Discriminator"}, lr=1e-4, lr_d=4e-4)
    assert [opt.param_groups[0]["lr"] for opt in module.configure_optimizers()] == pytest.approx([1e-4, 4e-4])
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    assert discriminator_loss(real, fake, "hinge", 1.0) == pytest.approx((0.0 + 0.5) / 2 + (0.0 + 1.5) / 2)
    assert generator_loss(fake, "hinge") == pytest.approx(0.75)
    smoothed = discriminator_loss(real, fake, "bce", 0.9)
    expected = F.binary_cross_entropy_with_logits(
        real, torch.full_like(real, 0.9)
    ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    assert smoothed == pytest.approx(float(expected))


def test_ema_generator_makes_the_samples_and_the_exported_generator(fake_data_root: Path, tmp_path: Path) -> None:
    module = GAN(
        {"_target_": "gan.nets.conv.Generator", "latent_dim": 100}, {"_target_": "gan.nets.conv.Discriminator"},
        ema_decay=0.5,
    )  # fmt: skip
    datamodule = FashionMNISTDataModule(
        root=str(fake_data_root), system_dir="/nonexistent", download=False, batch_size=16
    )  # 6 steps
    trainer = Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=datamodule)
    ema, raw = module.generator_ema.module, module.generator
    assert all(not p.requires_grad for p in ema.parameters())
    assert changed(ema, snapshot(raw))  # an average of the weights along the way, not the last weights
    assert not torch.equal(ema.bn1.running_mean, raw.bn1.running_mean)  # BatchNorm statistics are averaged too
    ema.eval(), raw.eval()
    assert torch.equal(module.sample_fixed(), ema(module.fixed_noise))
    assert not torch.allclose(module.sample_fixed(), raw(module.fixed_noise))
    path = tmp_path / "ema.ckpt"
    trainer.save_checkpoint(path)
    z = torch.randn(4, 100)
    assert torch.equal(gan.load_generator(path)(z), ema(z))


def test_ema_decay_warms_up_then_reaches_its_setting() -> None:
    module = GAN({"_target_": "gan.nets.conv.Generator"}, {"_target_": "gan.nets.conv.Discriminator"}, ema_decay=0.9)
    generator, average = module.generator, module.generator_ema
    average.update_parameters(generator)  # the first update copies the weights
    expected = generator.linear1.weight.detach().clone()
    for step in range(1, 40):
        with torch.no_grad():
            generator.linear1.weight.add_(1.0)
        average.update_parameters(generator)
        decay = min(0.9, (1 + step) / (10 + step))  # 2/11 at the first step: the start is soon forgotten
        expected = decay * expected + (1 - decay) * generator.linear1.weight.detach()
        torch.testing.assert_close(average.module.linear1.weight, expected)


@pytest.fixture
def host_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the tensor methods that read a value into Python (on a GPU each waits for the queued work),
    called while the list's first entry is ``"on"``. Adam reading its step counters is left out: they stay on the
    host even for a GPU's parameters."""
    reads = ["off"]
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        method = getattr(torch.Tensor, name)

        def counted(tensor: torch.Tensor, *args, _name: str = name, _method=method, **kwargs):
            if reads[0] == "on" and sys._getframe(1).f_code.co_name != "_get_value":
                reads.append(_name)
            return _method(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    yield reads


def test_update_average_is_averaged_models_update_without_reading_the_device(host_reads: list[str]) -> None:
    generator = conv.Generator(latent_dim=100)
    reference, average = (
        AveragedModel(generator, multi_avg_fn=ema_with_warmup(0.9), use_buffers=True) for _ in range(2)
    )
    for step in range(4):
        generator(torch.randn(8, 100))  # new BatchNorm statistics
        with torch.no_grad():
            generator.linear1.weight.add_(1.0)
        reference.update_parameters(generator)
        host_reads[0] = "on"
        update_average(average, generator, started=step > 0)
        host_reads[0] = "off"
    assert host_reads == ["off"]
    for (name, expected), actual in zip(reference.state_dict().items(), average.state_dict().values(), strict=True):
        assert torch.equal(actual, expected), name  # n_averaged and BatchNorm's batch counters included


def test_a_training_batch_reads_nothing_from_the_device(fake_data_root: Path, host_reads: list[str]) -> None:
    """Between its logging steps, a batch queues all its work: a GPU never waits for the host in the middle."""

    class Window(Callback):
        def on_train_batch_start(self, *args) -> None:
            host_reads[0] = "on"

        def on_train_batch_end(self, *args) -> None:
            host_reads[0] = "off"

    module = make_gan("conv")
    module.hparams.ema_decay = 0.9
    module.generator_ema = AveragedModel(module.generator, multi_avg_fn=ema_with_warmup(0.9), use_buffers=True)
    datamodule = FashionMNISTDataModule(
        root=str(fake_data_root), system_dir="/nonexistent", download=False, batch_size=16
    )
    trainer = Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[Window()]
    )
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 2 * 6
    assert host_reads == ["off"]


class RecordingLogger(Logger):
    """Keeps each (step, metrics) that Lightning writes."""

    name, version = "recording", 0

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int, dict[str, float]]] = []

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.rows.append((step, metrics))

    def log_hyperparams(self, *args, **kwargs) -> None:
        pass


def test_each_logged_step_holds_the_values_of_its_own_batch(fake_data_root: Path) -> None:
    class BatchLosses(Callback):
        def __init__(self) -> None:
            self.d_losses: list[float] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
            self.d_losses.append(float(outputs["loss/d"]))

    logger, batch_losses = RecordingLogger(), BatchLosses()
    datamodule = FashionMNISTDataModule(
        root=str(fake_data_root), system_dir="/nonexistent", download=False, batch_size=8
    )
    trainer = Trainer(
        max_epochs=1, logger=logger, log_every_n_steps=3, callbacks=[batch_losses], enable_checkpointing=False,
        enable_progress_bar=False,
    )  # fmt: skip
    trainer.fit(make_gan("mlp"), datamodule=datamodule)
    logged = {step: metrics["loss/d_step"] for step, metrics in logger.rows if "loss/d_step" in metrics}
    assert list(logged) == [2, 5, 8, 11]  # 12 batches: TensorBoard's step is the batch's index
    assert logged == {step: batch_losses.d_losses[step] for step in logged}


def test_r1_penalty_is_the_squared_gradient_of_d_at_the_real_images() -> None:
    discriminator = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 1))
    real_images = torch.randn(4, 1, 28, 28, requires_grad=True)
    # a linear D's gradient at every image is its weight vector
    expected = discriminator[1].weight.pow(2).sum()
    torch.testing.assert_close(r1_penalty(discriminator(real_images), real_images), expected)


def test_r1_gamma_changes_the_discriminator_step_only(fake_data_root: Path) -> None:
    """Same seed, same batch: the penalty reaches D's update."""
    trained = {}
    for r1_gamma in (0.0, 10.0):
        torch.manual_seed(0)
        module = GAN(
            {"_target_": "gan.nets.mlp.Generator"}, {"_target_": "gan.nets.mlp.Discriminator"}, r1_gamma=r1_gamma
        )
        datamodule = FashionMNISTDataModule(root=str(fake_data_root), system_dir="/nonexistent", download=False)
        trainer = Trainer(
            max_epochs=1, limit_train_batches=1, logger=False, enable_checkpointing=False, enable_progress_bar=False
        )
        trainer.fit(module, datamodule=datamodule)
        trained[r1_gamma] = module
    assert changed(trained[10.0].discriminator, snapshot(trained[0.0].discriminator))
    assert torch.isfinite(trainer.callback_metrics["loss/d_epoch"])


def test_adam_states_saved_for_a_cuda_graph_step_on_the_cpu() -> None:
    weights = torch.nn.Parameter(torch.ones(3))
    saved = torch.optim.Adam([weights], capturable=True).state_dict()  # as hardware=gpu's checkpoints hold them
    saved["state"] = {0: {"step": torch.tensor(5.0), "exp_avg": torch.zeros(3), "exp_avg_sq": torch.zeros(3)}}
    resumed = torch.optim.Adam([weights])
    resumed.load_state_dict(saved)
    weights.grad = torch.ones(3)
    with pytest.raises(AssertionError, match="If capturable=True"):
        resumed.step()
    set_capturable(resumed, False)  # what GAN.on_train_start does on the CPU
    resumed.step()
    assert resumed.state[weights]["step"].item() == 6.0 and not resumed.param_groups[0]["capturable"]
