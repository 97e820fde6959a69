"""``train.py`` end to end, as a user runs it, on tiny synthetic data (subprocesses)."""

import os
import re
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from pytorch_lightning import Callback, Trainer
from pytorch_lightning.callbacks import TQDMProgressBar
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import gan
import gan.callbacks
import gan.module
from gan.errors import UserError
from gan.graphs import WARMUP_BATCHES, GraphedStep, set_capturable
from gan.module import GAN
from gan.training import build, check_same_model, fit, hide_cuda_without_gpu, register_resolvers
from tests.conftest import ROOT, run_script, tiny_train_args

SCALARS = ["loss/d_step", "loss/g_step", "loss/d_epoch", "loss/g_epoch", "D(x)_step", "D(G(z))_step"]


def read_events(run_dir: Path) -> EventAccumulator:
    (event_file,) = (run_dir / "tensorboard").glob("events.out.tfevents.*")
    events = EventAccumulator(str(event_file), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    return events


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_run_folder_holds_every_output(model: str, fake_data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_script(*tiny_train_args(fake_data_root, run_dir), f"model={model}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Generator(" in result.stdout and "Discriminator(" in result.stdout  # printed at start
    output = result.stdout + result.stderr
    assert "litlogger" not in output and "LeafSpec" not in output  # Lightning's advert, its warning about itself

    checkpoints = sorted(path.name for path in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["epoch_000.ckpt", "epoch_001.ckpt", "last.ckpt"]
    samples = sorted(path.name for path in (run_dir / "samples").iterdir())
    assert samples == ["epoch_000.png", "epoch_001.png"]
    assert Image.open(run_dir / "samples" / "epoch_001.png").size == (8 * 30 + 2, 8 * 30 + 2)
    assert Image.open(run_dir / "loss_curve.png").size[0] > 400
    models_text = (run_dir / "models.txt").read_text()
    assert models_text.startswith("Generator(") and "\nDiscriminator(" in models_text

    events = read_events(run_dir)
    tags = events.Tags()
    for tag in SCALARS:
        assert tag in tags["scalars"], tag
    assert len(events.Scalars("loss/d_step")) == 6  # 3 batches x 2 epochs, one point per batch
    assert [event.step for event in events.Images("samples/fixed_noise")] == [0, 1]
    assert "models/text_summary" in tags["tensors"]
    assert "_hparams_/session_start_info" in events.summary_metadata
    hparams = yaml.safe_load((run_dir / "tensorboard" / "hparams.yaml").read_text())
    assert hparams["model"]["generator"]["_target_"] == f"gan.nets.{model}.Generator" and hparams["seed"] == 0

    generator = gan.load_generator(run_dir / "checkpoints" / "last.ckpt")
    assert type(generator).__module__ == f"gan.nets.{model}"
    assert generator(torch.randn(2, 100)).shape == (2, 1, 28, 28)


def test_64_bit_run_without_logger_or_grid_measures_the_metrics(fake_data_root: Path, tmp_path: Path) -> None:
    result = run_script(
        *tiny_train_args(fake_data_root, tmp_path), "trainer.max_epochs=1", "trainer.precision=64-true", "~logger",
        "callbacks.sample_grid=null",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "metrics.csv").is_file() and (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "samples").exists() and not (tmp_path / "tensorboard").exists()


def test_a_run_without_the_checkpoint_callback_saves_no_checkpoint(fake_data_root: Path, tmp_path: Path) -> None:
    result = run_script(
        *tiny_train_args(fake_data_root, tmp_path), "trainer.max_epochs=1", "metrics.every_n_epochs=0",
        "callbacks.checkpoint=null",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(tmp_path.rglob("*.ckpt"))  # not Lightning's default checkpoint either
    assert (tmp_path / "models.txt").is_file()


def test_multirun_sweep_gives_each_run_its_own_folder(fake_data_root: Path, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    script, *overrides = [arg for arg in tiny_train_args(fake_data_root, tmp_path) if "hydra.run.dir" not in arg]
    result = run_script(
        script, "-m", *overrides, "trainer.max_epochs=1", "model=mlp,conv", "seed=0,1", f"hydra.sweep.dir={sweep_dir}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = sorted(path for path in sweep_dir.iterdir() if path.is_dir())
    assert [path.name for path in run_dirs] == ["0", "1", "2", "3"]
    models = set()
    for run_dir in run_dirs:
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
        models.add(type(gan.load_generator(run_dir / "checkpoints" / "last.ckpt")).__module__)
    assert models == {"gan.nets.mlp", "gan.nets.conv"}


def test_same_seed_same_fixed_noise_different_seed_different(fake_data_root: Path, tmp_path: Path) -> None:
    noises = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run_dir = tmp_path / name
        args = tiny_train_args(fake_data_root, run_dir)
        result = run_script(*args, "trainer.max_epochs=1", f"seed={seed}")
        assert result.returncode == 0, result.stderr[-3000:]
        checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
        noises.append(checkpoint["state_dict"]["fixed_noise"])
    assert torch.equal(noises[0], noises[1]) and not torch.equal(noises[0], noises[2])


LAB_LOOP = {
    "lr": 2e-4,
    "lr_d": 2e-4,
    "betas": [0.5, 0.999],
    "loss": "bce",
    "label_smoothing": 0.0,
    "ema_decay": 0.0,
    "r1_gamma": 0.0,
}


def compose_train(*overrides: str) -> DictConfig:
    """train.py's configuration with ``overrides``, as Hydra composes it."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def test_a_checkpoint_from_before_fused_adam_counts_as_unfused() -> None:
    cfg = compose_train()
    saved = {key: value for key, value in OmegaConf.to_container(cfg.model, resolve=True).items() if key[0] != "_"}
    del saved["fused_adam"]  # as in the checkpoints of runs from before the setting
    check_same_model("old.ckpt", saved, cfg.model)
    with pytest.raises(UserError, match=re.escape("old.ckpt was trained with model.fused_adam=False (this run True)")):
        check_same_model("old.ckpt", saved, compose_train("model.fused_adam=true").model)


def test_a_setting_taken_from_another_is_named_once_in_the_refusal() -> None:
    cfg = compose_train()
    saved = {key: value for key, value in OmegaConf.to_container(cfg.model, resolve=True).items() if key[0] != "_"}
    with pytest.raises(UserError) as refusal:
        check_same_model("a.ckpt", saved, compose_train("model.latent_dim=50", "seed=3").model)
    differing = "model.latent_dim=100 (this run 50), model.noise_seed=0 (this run 3, set by seed);"
    assert f"a.ckpt was trained with {differing}" in str(refusal.value)  # not model.generator.latent_dim as well
    with pytest.raises(UserError, match=re.escape("trained with model.generator.latent_dim=100 (this run 50);")):
        check_same_model("a.ckpt", saved, compose_train("model.generator.latent_dim=50").model)


# a fast run draws its whole curve once, at the end; with 0, each epoch's end draws it (and the end has no more)
@pytest.mark.parametrize(("redraw_seconds", "drawn_batches"), [(60, [12 * 2]), (0, [12, 12 * 2])])
def test_the_loss_curve_is_drawn_at_the_end_and_after_epochs_a_while_after_the_last_drawing(
    redraw_seconds: int, drawn_batches: list[int], fake_data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn, draw = [], gan.callbacks.LossCurve.plot
    monkeypatch.setattr(gan.callbacks.LossCurve, "plot", lambda curve: drawn.append(len(curve.d_losses)) or draw(curve))
    overrides = ["trainer.max_epochs=2", f"callbacks.loss_curve.redraw_seconds={redraw_seconds}"]
    train_tiny(fake_data_root, tmp_path, *overrides, hardware="cpu")
    assert drawn == drawn_batches


# a redraw at most every refresh_seconds, and after each epoch's last batch (12 batches an epoch)
@pytest.mark.parametrize(("seconds", "drawn_batches"), [(60, [1, 12, 12]), (0, [*range(1, 13)] * 2)])
def test_the_progress_bar_is_redrawn_by_the_clock_and_after_each_epoch(
    seconds: float, drawn_batches: list[int], fake_data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn, draw = [], TQDMProgressBar.on_train_batch_end

    def counted_draw(bar: TQDMProgressBar, trainer: Trainer, module: GAN, outputs, batch, batch_idx: int) -> None:
        drawn.append(batch_idx + 1)
        draw(bar, trainer, module, outputs, batch, batch_idx)

    monkeypatch.setattr(TQDMProgressBar, "on_train_batch_end", counted_draw)
    overrides = ["trainer.max_epochs=2", f"callbacks.progress_bar.refresh_seconds={seconds}"]
    train_tiny(fake_data_root, tmp_path, *overrides, hardware="cpu")
    assert drawn == drawn_batches


def test_a_run_may_go_on_with_or_without_cuda_graphs() -> None:
    cfg = compose_train()
    saved = {key: value for key, value in OmegaConf.to_container(cfg.model, resolve=True).items() if key[0] != "_"}
    saved["cuda_graph"] = True  # a checkpoint of hardware=gpu
    check_same_model("gpu.ckpt", saved, cfg.model)
    saved["lr"] = 0.5
    with pytest.raises(UserError, match=re.escape("gpu.ckpt was trained with model.lr=0.5 (this run 0.002)")):
        check_same_model("gpu.ckpt", saved, cfg.model)


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_recipe_lab_is_the_plain_lab_loop_and_the_default_is_not(model: str) -> None:
    lab = compose_train(f"model={model}", "recipe=lab")
    default = compose_train(f"model={model}")
    assert {key: lab.model[key] for key in LAB_LOOP} == LAB_LOOP
    assert lab.data.batch_size == 64 and lab.trainer.max_epochs == {"mlp": 3, "conv": 15}[model]
    assert {key: default.model[key] for key in LAB_LOOP} != LAB_LOOP
    assert default.trainer.max_epochs == lab.trainer.max_epochs  # same epochs, better training


@pytest.mark.parametrize("recipe", ["default", "lab"])
def test_loss_group_sets_the_loss_over_any_recipe(recipe: str) -> None:
    losses = {loss: compose_train(f"recipe={recipe}", f"loss={loss}").model.loss for loss in ("bce", "hinge")}
    unchosen = compose_train(f"recipe={recipe}").model.loss
    assert losses == {"bce": "bce", "hinge": "hinge"} and unchosen == "bce"


@pytest.mark.parametrize(
    ("hardware", "gpu_present", "hidden"), [("cpu", False, True), ("cpu", True, False), ("gpu", True, False)]
)
def test_a_cpu_run_without_a_gpu_hides_cuda_from_torch(
    hardware: str, gpu_present: bool, hidden: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu_present)
    hide_cuda_without_gpu(compose_train(f"hardware={hardware}"))
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ("" if hidden else "0")


class FailOnGpuSync(Callback):
    """Makes any wait of the host for the GPU an error, from the start of each batch to the start of the next,
    except around the logging steps (which copy the logged values to the host once) and in the batches before the
    CUDA graph's replays (the cuDNN autotuner's trials, and the capture)."""

    def on_train_batch_start(self, trainer: Trainer, pl_module, batch, batch_idx: int) -> None:
        logging_step = batch_idx % trainer.log_every_n_steps == trainer.log_every_n_steps - 1
        torch.cuda.set_sync_debug_mode("default" if logging_step or batch_idx <= WARMUP_BATCHES else "error")

    def on_train_batch_end(self, trainer: Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx == trainer.num_training_batches - 1:  # the epoch's end reads the losses (DivergenceCheck)
            torch.cuda.set_sync_debug_mode("default")

    def on_exception(self, trainer: Trainer, pl_module, exception: BaseException) -> None:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_gpu_batches_never_wait_for_the_gpu_between_logging_steps(model: str, fake_data_root: Path, tmp_path: Path):
    cfg = compose_train(
        f"model={model}",
        "hardware=gpu",
        f"data.root={fake_data_root}",
        "data.system_dir=/nonexistent",
        "data.download=false",
        "data.batch_size=2",  # 48 batches: logging steps, and progress-bar values in between
        "trainer.max_epochs=1",
        "trainer.log_every_n_steps=5",
        "metrics.every_n_epochs=0",
        f"paths.output_dir={tmp_path}",
    )
    datamodule, module, trainer = build(cfg, extra_callbacks=[FailOnGpuSync()])
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 2 * 48
    assert module._direct_step.graph is not None  # hardware=gpu replays its steps as a CUDA graph


def train_tiny(
    data_root: Path, output_dir: Path, *overrides: str, hardware: str = "gpu", ckpt_path: Path | None = None
) -> tuple[GAN, Trainer]:
    """A 32-bit, deterministic run of 12 batches of 8 images an epoch, and its trainer."""
    cfg = compose_train(
        f"hardware={hardware}",
        "trainer.precision=32-true",
        "++trainer.benchmark=false",  # the same convolution algorithms in every run (hardware=gpu sets it)
        "trainer.deterministic=true",
        f"data.root={data_root}",
        "data.system_dir=/nonexistent",
        "data.download=false",
        "data.batch_size=8",
        "trainer.max_epochs=1",
        "metrics.every_n_epochs=0",
        f"paths.output_dir={output_dir}",
        *overrides,
    )
    datamodule, module, trainer = build(cfg)
    fit(trainer, module, datamodule, None if ckpt_path is None else str(ckpt_path))
    return module, trainer


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
@pytest.mark.parametrize("recipe", [["model=conv"], ["model=mlp", "model.loss=hinge", "model.r1_gamma=1.0"]])
def test_cuda_graph_replays_train_as_the_eager_steps_do(
    recipe: list[str], fake_data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graphed, graphed_trainer = train_tiny(fake_data_root, tmp_path / "graph", *recipe)
    # the eager steps with the graph's Adam (capturable), which rounds its bias correction on the GPU
    monkeypatch.setattr(gan.module, "set_capturable", lambda optimizer, capturable: set_capturable(optimizer, True))
    eager, eager_trainer = train_tiny(fake_data_root, tmp_path / "eager", *recipe, "model.cuda_graph=false")
    assert graphed._direct_step.graph is not None and not isinstance(eager._direct_step, GraphedStep)
    assert graphed_trainer.global_step == eager_trainer.global_step == 2 * 12
    for name, eager_weights in eager.state_dict().items():
        graphed_weights = graphed.state_dict()[name]
        torch.testing.assert_close(graphed_weights, eager_weights, msg=lambda text, name=name: f"{name}: {text}")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
@pytest.mark.parametrize("hardware", ["gpu", "cpu"])
def test_a_graphed_run_goes_on_from_its_checkpoint(hardware: str, fake_data_root: Path, tmp_path: Path) -> None:
    _, first = train_tiny(fake_data_root, tmp_path / "first")
    first_checkpoint = tmp_path / "first.ckpt"
    first.save_checkpoint(first_checkpoint)
    resumed, trainer = train_tiny(
        fake_data_root, tmp_path / "resumed", "trainer.max_epochs=2", hardware=hardware, ckpt_path=first_checkpoint
    )
    assert trainer.global_step == 2 * 2 * 12
    assert isinstance(resumed._direct_step, GraphedStep) == (hardware == "gpu")
    weights = [tensor for tensor in resumed.state_dict().values() if tensor.is_floating_point()]
    assert all(torch.isfinite(tensor).all() for tensor in weights)
