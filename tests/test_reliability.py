"""Reliability of train.py: reproducible runs, exact resume, interruption, divergence, DDP."""

import shlex
import signal
from pathlib import Path

import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import gan
from gan.callbacks import LossCurve, resume_command
from gan.errors import DivergenceError
from tests.conftest import ROOT, run_script, tiny_train_args


def train(data_root: Path, run_dir: Path, *overrides: str):
    return run_script(*tiny_train_args(data_root, run_dir), *overrides)


def train_until_signal(data_root: Path, run_dir: Path, signum: int, *options: str):
    """A run that ``tests.helpers.SignalAt`` sends ``signum`` after batch 1 (``options``: its other settings)."""
    return train(
        data_root, run_dir, "+callbacks.stop._target_=tests.helpers.SignalAt", "+callbacks.stop.batch=1",
        f"+callbacks.stop.signum={int(signum)}", *options,
    )  # fmt: skip


def epoch_end_steps(run_dir: Path) -> list[int]:
    """The TensorBoard steps of the run's epoch losses, over its event files (a resumed run adds one)."""
    steps = []
    for event_file in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        events = EventAccumulator(str(event_file))
        events.Reload()
        if "loss/d_epoch" in events.Tags()["scalars"]:
            steps += [event.step for event in events.Scalars("loss/d_epoch")]
    return steps


def load(run_dir: Path, name: str = "last.ckpt") -> dict:
    return torch.load(run_dir / "checkpoints" / name, weights_only=False)


def assert_same_weights(first: dict, second: dict) -> None:
    assert first["state_dict"].keys() == second["state_dict"].keys()
    for key, value in first["state_dict"].items():
        assert torch.equal(value, second["state_dict"][key]), key


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_same_config_and_seed_give_bit_identical_runs(model: str, fake_data_root: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        result = train(fake_data_root, tmp_path / name, f"model={model}")
        assert result.returncode == 0, result.stderr[-3000:]
    assert_same_weights(load(tmp_path / "a"), load(tmp_path / "b"))
    grid = Path("samples") / "epoch_001.png"
    assert (tmp_path / "a" / grid).read_bytes() == (tmp_path / "b" / grid).read_bytes()


def test_resumed_run_ends_as_the_uninterrupted_one(fake_data_root: Path, tmp_path: Path) -> None:
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert train(fake_data_root, whole, "model=conv", "trainer.max_epochs=3").returncode == 0
    assert train(fake_data_root, split, "model=conv", "trainer.max_epochs=1").returncode == 0
    args = [arg for arg in tiny_train_args(fake_data_root, split) if not arg.startswith("hydra.run.dir")]
    resumed = run_script(*args, "model=conv", "trainer.max_epochs=3", f"resume={split}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    whole_ckpt, split_ckpt = load(whole), load(split)
    assert_same_weights(whole_ckpt, split_ckpt)
    for whole_state, split_state in zip(whole_ckpt["optimizer_states"], split_ckpt["optimizer_states"], strict=True):
        for key, value in whole_state["state"][0].items():
            assert torch.equal(value, split_state["state"][0][key])
    assert whole_ckpt["epoch"] == split_ckpt["epoch"] == 2
    assert whole_ckpt["global_step"] == split_ckpt["global_step"] == 2 * 3 * 3
    (whole_curve,) = [v for k, v in whole_ckpt["callbacks"].items() if k.startswith("LossCurve")]
    (split_curve,) = [v for k, v in split_ckpt["callbacks"].items() if k.startswith("LossCurve")]
    assert split_curve == whole_curve and split_curve["epoch_ends"] == [3, 6, 9]
    assert sorted(path.name for path in (split / "samples").iterdir()) == [f"epoch_00{i}.png" for i in range(3)]


def test_resuming_keeps_the_first_runs_hydra_record(fake_data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert train(fake_data_root, run_dir, "trainer.max_epochs=1").returncode == 0
    names = ("config.yaml", "hydra.yaml", "overrides.yaml")
    first_record = {name: (run_dir / ".hydra" / name).read_bytes() for name in names}
    args = [arg for arg in tiny_train_args(fake_data_root, run_dir) if not arg.startswith("hydra.run.dir")]
    assert run_script(*args, f"resume={run_dir}", "model=conv").returncode == 1  # refused: another model
    resumed = run_script(*args, f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    assert {name: (run_dir / ".hydra" / name).read_bytes() for name in names} == first_record
    (resumed_record,) = (run_dir / ".hydra").glob("resume_*")  # the refused attempt left none
    assert f"resume={run_dir}" in (resumed_record / "overrides.yaml").read_text()
    assert "model=conv" not in (resumed_record / "overrides.yaml").read_text()
    assert all((resumed_record / name).is_file() for name in names)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interruption_leaves_a_loadable_last_checkpoint(signum: int, fake_data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = train_until_signal(fake_data_root, run_dir, signum)
    assert result.returncode == 128 + signum  # as the shell reports a program that the signal stopped
    assert f"saved {run_dir / 'checkpoints' / 'last.ckpt'}" in result.stdout
    checkpoint = load(run_dir)
    assert checkpoint["epoch"] == 0 and checkpoint["global_step"] == 4  # two batches of epoch 0, D and G steps
    assert gan.load_generator(run_dir / "checkpoints" / "last.ckpt")(torch.randn(1, 100)).isfinite().all()
    assert (run_dir / "models.txt").is_file() and (run_dir / "loss_curve.png").is_file()  # drawn up to the stop

    command = shlex.split(result.stdout.split("continue with: ")[1].splitlines()[0])  # the printed resume command
    assert command[:3] == ["python", "train.py", f"resume={run_dir}"] and f"data.root={fake_data_root}" in command
    assert not any(word.startswith("hydra.run.dir") for word in command)
    overrides = [word for word in command[3:] if not word.startswith("+callbacks.stop")]  # not interrupted again
    resumed = run_script(str(ROOT / "train.py"), f"resume={run_dir}", *overrides)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert load(run_dir)["epoch"] == 1
    batches = load(run_dir)["global_step"] // 2
    assert epoch_end_steps(run_dir) == [batches // 2 - 1, batches - 1]  # each epoch's last batch, as uninterrupted


@pytest.mark.parametrize("run_dir", ["/tmp/plain/run", "/tmp/a,b c'd", '/tmp/q"x\\y', "/tmp/[x]=y", "/tmp/x\\"])
def test_the_printed_resume_command_gives_hydra_the_run_folder(run_dir: str) -> None:
    """A comma would make a sweep of resume=, a quote or bracket a parse error: the folder is quoted for Hydra."""
    command = shlex.split(resume_command(Path(run_dir)))
    (override,) = OverridesParser.create().parse_overrides([command[2]])
    assert command[:2] == ["python", "train.py"] and override.key_or_group == "resume" and override.value() == run_dir


def test_ctrl_c_between_d_and_g_steps_saves_after_the_batch(fake_data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = train_until_signal(fake_data_root, run_dir, signal.SIGINT, "+callbacks.stop.mid_batch=true")
    assert result.returncode == 130
    assert "Ctrl-C: stopping before the next batch" in result.stdout
    assert "weights_only" not in result.stdout + result.stderr
    checkpoint = load(run_dir)
    losses = next(state for key, state in checkpoint["callbacks"].items() if key.startswith("LossCurve"))
    assert checkpoint["global_step"] == 4 and len(losses["d_losses"]) == 2  # batches 0 and 1, both D and G steps


def test_a_second_ctrl_c_within_the_batch_exits_at_once_saving_nothing(fake_data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = ("+callbacks.stop.mid_batch=true", "+callbacks.stop.twice=true", "trainer.max_epochs=2")
    result = train_until_signal(fake_data_root, run_dir, signal.SIGINT, *args)
    assert result.returncode == 130
    assert "stopped at once, without saving" in result.stdout and "Traceback" not in result.stderr
    assert not (run_dir / "checkpoints").exists()  # no epoch had ended: no checkpoint, not one between D and G


def test_a_second_ctrl_c_exits_at_once(fake_data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = train_until_signal(fake_data_root, run_dir, signal.SIGINT, "+callbacks.stop.again=true")
    assert result.returncode == 130  # our handler's exit, not Lightning's graceful sys.exit(1)
    assert "Traceback" not in result.stderr
    assert gan.load_generator(run_dir / "checkpoints" / "last.ckpt") is not None


INTERRUPT_IMPORT = """
import runpy, sys
class InterruptTorchImport:  # Ctrl-C while torch loads
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            raise KeyboardInterrupt
sys.meta_path.insert(0, InterruptTorchImport())
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("script", ["train.py", "analyze.py"])
def test_ctrl_c_while_torch_loads_exits_quietly(script: str) -> None:
    result = run_script("-c", INTERRUPT_IMPORT, str(ROOT / script))
    assert result.returncode == 130
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr


def test_ctrl_c_while_the_run_is_set_up_exits_quietly(fake_data_root: Path, tmp_path: Path) -> None:
    result = train(fake_data_root, tmp_path / "run", "model._target_=tests.helpers.InterruptedGAN")
    assert result.returncode == 130
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # stopped before training, like a refused run: the folder can be reused


@pytest.mark.parametrize("curve", ["with the loss curve", "callbacks.loss_curve=null"])
def test_divergence_stops_the_run_and_keeps_the_good_checkpoint(curve: str, fake_data_root: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    leave_out = [curve] if curve.startswith("callbacks.") else []  # the check stays without the curve
    result = train(
        fake_data_root, run_dir, "trainer.max_epochs=3", "model._target_=tests.helpers.DivergingGAN",
        "+model.nan_from_batch=4", *leave_out,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: training diverged: loss/d is nan at batch 5 (epoch 1);"
        " the run stopped, and the checkpoints of the epochs before are kept"
    )
    assert sorted(path.name for path in (run_dir / "checkpoints").iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
    checkpoint = load(run_dir)
    assert checkpoint["epoch"] == 0
    assert all(value.isfinite().all() for value in checkpoint["state_dict"].values() if value.is_floating_point())


def test_a_run_that_diverges_in_its_first_epoch_keeps_its_folder(fake_data_root: Path, tmp_path: Path) -> None:
    """Refused once training has started: what it logged stays, for a look at the divergence."""
    run_dir = tmp_path / "run"
    result = train(fake_data_root, run_dir, "model._target_=tests.helpers.DivergingGAN", "+model.nan_from_batch=1")
    assert result.returncode == 1
    assert "training diverged: loss/d is nan at batch 2 (epoch 0)" in result.stderr.strip().splitlines()[-1]
    assert {".hydra", "models.txt", "tensorboard", "loss_curve.png"} <= {path.name for path in run_dir.iterdir()}


def test_the_loss_curve_keeps_the_finite_losses_read_with_the_nan(tmp_path: Path) -> None:
    curve = LossCurve(str(tmp_path))
    curve._pending = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]), torch.tensor([float("nan"), 5.0])]
    with pytest.raises(DivergenceError, match="loss/d is nan at batch 2"):
        curve._flush()
    assert (curve.d_losses, curve.g_losses) == ([1.0, 3.0], [2.0, 4.0])


def test_divergence_in_a_measured_epoch_stops_the_run_before_the_image_metrics(
    fake_data_root: Path, tmp_path: Path
) -> None:
    """The last epoch is measured: the losses are checked first (FID of non-finite samples crashed the process)."""
    result = train(
        fake_data_root, tmp_path / "run", "trainer.max_epochs=2", "model._target_=tests.helpers.DivergingGAN",
        "+model.nan_from_batch=4",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: training diverged: loss/d is nan at batch 5")


def test_a_diverged_run_does_not_stop_the_sweep(fake_data_root: Path, tmp_path: Path) -> None:
    script, *overrides = [arg for arg in tiny_train_args(fake_data_root, tmp_path) if "hydra.run.dir" not in arg]
    result = run_script(
        script, "-m", *overrides, "model._target_=tests.helpers.DivergingGAN", "+model.nan_from_batch=1",
        "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )  # fmt: skip
    assert result.returncode == 1
    assert "training diverged" in result.stderr
    assert f"1 run(s) of the sweep failed: {tmp_path / 'sweep' / '0'}" in result.stderr
    assert load(tmp_path / "sweep" / "1")["epoch"] == 1  # seed 1 trained both epochs


def test_a_crashed_run_does_not_hide_the_sweeps_list_of_failed_runs(fake_data_root: Path, tmp_path: Path) -> None:
    """A job that fails with an error that is not the user's (a bug, out of memory) shows its traceback, the sweep
    goes on, and the sweep ends with the list of every failed run, as for a UserError."""
    script, *overrides = [arg for arg in tiny_train_args(fake_data_root, tmp_path) if "hydra.run.dir" not in arg]
    result = run_script(
        script, "-m", *overrides, "model._target_=tests.helpers.CrashingGAN", "seed=0,1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "RuntimeError: simulated crash in the training step" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: 1 run(s) of the sweep failed: {tmp_path / 'sweep' / '0'}"
    )
    assert load(tmp_path / "sweep" / "1")["epoch"] == 1  # seed 1 trained both epochs


def test_ddp_on_two_cpu_processes_keeps_ranks_identical_and_logs_once(fake_data_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = train(
        fake_data_root, run_dir, "hardware=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
        "trainer.precision=32-true", "data.batch_size=16", "+callbacks.dump._target_=tests.helpers.DumpProcessState",
        f"+callbacks.dump.folder={tmp_path / 'state'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / "state" / f"rank{rank}.pt") for rank in (0, 1))
    start = gan.module.GAN(
        {"_target_": "gan.nets.mlp.Generator"}, {"_target_": "gan.nets.mlp.Discriminator"}
    ).state_dict()
    for key, value in rank0["weights"].items():
        assert torch.equal(value, rank1["weights"][key]), key
    assert not torch.equal(rank0["weights"]["generator.fc1.weight"], start["generator.fc1.weight"])
    # the same weights, but each process its own real batch and its own noise (one batch N times taught G less)
    for score in ("D(x)", "D(G(z))"):
        assert not torch.equal(rank0[score], rank1[score]), score
    assert result.stdout.count("Generator(") == 1  # printed by rank zero only
    assert result.stdout.count("training the Fashion-MNIST classifier once") == 1  # the others read its cache
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert "sync_dist" not in result.stderr  # Lightning's advice for each metric logged without it
