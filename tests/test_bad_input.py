"""Every bad input to train.py ends with one clear line and a non-zero exit, never a traceback.

Each row of BAD_INPUTS is a case: its overrides (with {placeholders} filled in by the test) and what the error
must say. Hydra's own message for an unknown group choice spans several lines and names the choices.
"""

import re
from pathlib import Path

import pytest
import torch

from gan.errors import UserError
from gan.training import claim_run_folder, hold_run_folder
from tests.conftest import run_script, tiny_train_args, write_fake_fmnist

BAD_INPUTS = [
    ("unknown model", ["model=resnet"], ["Could not find 'model/resnet'", "conv", "mlp"]),
    ("unknown hardware", ["hardware=tpu"], ["Could not find 'hardware/tpu'", "cpu", "gpu", "ddp"]),
    ("zero batch size", ["data.batch_size=0"], ["data.batch_size must be an integer of at least 2, got 0"]),
    ("negative batch size", ["data.batch_size=-1"], ["data.batch_size must be an integer of at least 2, got -1"]),
    (
        "batch of one image",
        ["model=conv", "data.batch_size=1"],
        ["data.batch_size must be an integer of at least 2, got 1"],
    ),
    ("negative workers", ["data.num_workers=-1"], ["data.num_workers must be a non-negative integer, got -1"]),
    ("negative logging interval", ["trainer.log_every_n_steps=-1"], ["trainer.log_every_n_steps must be a non-neg"]),
    ("no training batches", ["+trainer.limit_train_batches=0"], ["trainer.limit_train_batches must be a positive"]),
    ("more than the epoch", ["+trainer.limit_train_batches=1.5"], ["a fraction of the epoch in (0, 1], got 1.5"]),
    ("infinite batches", ["+trainer.limit_train_batches=inf"], ["trainer.limit_train_batches must be", "got inf"]),
    ("seed beyond numpy's", ["seed=99999999999"], ["seed must be an integer from 0 to 4294967295, got 99999999999"]),
    ("adam beta of 2", ["model.betas=[2,0.9]"], ["model.betas must be two numbers in [0, 1) (Adam's), got [2, 0.9]"]),
    ("one adam beta", ["model.betas=0.5"], ["model.betas must be two numbers in [0, 1) (Adam's), got 0.5"]),
    ("zero latent size", ["model.latent_dim=0"], ["model.latent_dim must be a positive integer, got 0"]),
    (
        "negative loss curve redraw time",
        ["callbacks.loss_curve.redraw_seconds=-1"],
        ["callbacks.loss_curve.redraw_seconds must be 0 (each epoch) or more, got -1"],
    ),
    (
        "negative progress bar redraw time",
        ["callbacks.progress_bar.refresh_seconds=-0.5"],
        ["callbacks.progress_bar.refresh_seconds must be 0 (each batch) or more, got -0.5"],
    ),
    ("text loss check interval", ["callbacks.loss_curve.check_every_n_batches=abc"], ["check_every_n_batches must be"]),
    (
        "loss smoothing of 1",
        ["callbacks.loss_curve.smoothing=1"],
        ["callbacks.loss_curve.smoothing must be a number in"],
    ),
    ("zero epochs", ["trainer.max_epochs=0"], ["trainer.max_epochs must be a positive integer, got 0"]),
    ("negative epochs", ["trainer.max_epochs=-5"], ["trainer.max_epochs must be a positive integer, got -5"]),
    ("text epochs", ["trainer.max_epochs=ten"], ["trainer.max_epochs must be a positive integer, got 'ten'"]),
    ("text deterministic", ["trainer.deterministic=abc"], ["trainer.deterministic must be true, false or warn"]),
    ("text seed", ["seed=abc"], ["seed must be an integer from 0 to 4294967295, got 'abc'"]),
    ("text batch size", ["data.batch_size=big"], ["data.batch_size must be an integer of at least 2, got 'big'"]),
    ("unknown lr scaling", ["model.lr_scaling=cubic"], ["model.lr_scaling must be one of none, linear, sqrt"]),
    ("unknown recipe", ["recipe=fancy"], ["Could not find 'recipe/fancy'", "default", "lab"]),
    ("unknown loss group", ["loss=wasserstein"], ["Could not find 'loss/wasserstein'", "bce", "hinge"]),
    ("misspelt setting", ["+seeed=1"], ["seeed is no setting (a typo?); the settings here: callbacks, ckpt_path"]),
    ("misspelt setting without +", ["seeed=1"], ["seeed=1: seeed is no setting (a typo?); the settings here: call"]),
    (
        "misspelt model setting without +",
        ["model.lrr=1"],
        ["model.lrr=1: model.lrr is no setting (a typo?); the settings here: batch_size, betas,", "gan.module.GAN"],
    ),
    ("setting under a group of global settings", ["+loss.typo=1"], ["loss is no setting (a typo?)"]),
    (
        "misspelt Trainer argument",
        ["+trainer.limit_trian_batches=5"],
        ["unexpected keyword argument 'limit_trian_batches' (did you mean limit_train_batches?)"],
    ),
    ("misspelt network argument", ["+model.generator.hidden_dm=5"], ["'hidden_dm'\") (did you mean hidden_dim?)"]),
    (
        "argument the network lacks",
        ["model=conv", "+model.generator.hidden_dim=64"],
        ["'hidden_dim'\") (Generator takes: latent_dim)"],
    ),
    (
        "Hydra setting of the wrong type",
        ["hydra.job.chdir=abc"],
        ["hydra.job.chdir=abc: Value 'abc' is not a valid bool"],
    ),
    (
        "setting of a section left out",
        ["callbacks.loss_curve=null", "callbacks.loss_curve.smoothing=0.5"],
        [
            "callbacks.loss_curve.smoothing=0.5: callbacks.loss_curve=null leaves callbacks.loss_curve out, so it has"
            " no settings; give one or the other"
        ],
    ),
    ("callback that is no config", ["+callbacks.typo=1"], ["callbacks.typo must be a config with a _target_"]),
    ("misspelt logger setting", ["+logger.flush_sec=10"], ["logger.flush_sec is no setting (a typo?)", "flush_secs"]),
    (
        "misspelt paths setting",
        ["+paths.output=x"],
        ["paths.output is no setting (a typo?); the settings here: output_"],
    ),
    ("no callbacks", ["~callbacks"], ["~callbacks: a run needs its callbacks settings; only ~logger can be left out"]),
    ("no paths", ["~paths"], ["~paths: a run needs its paths settings"]),
    ("no seed", ["~seed"], ["~seed: a run needs its seed settings"]),
    ("run folder in ~", ["hydra.run.dir='~/run'"], ["hydra.run.dir=~/run: Hydra does not expand ~"]),
    (
        "run folder in ~, unquoted for Hydra",
        ["hydra.run.dir=~/run"],
        ["hydra.run.dir=~/run: Hydra cannot read a value that starts with ~; give the whole path, such as"],
    ),
    ("no resume setting", ["~resume"], ["~resume: a run needs its resume settings"]),  # null: Hydra's "does not exist"
    ("no ckpt_path setting", ["~ckpt_path"], ["~ckpt_path: a run needs its ckpt_path settings"]),
    (
        "model of another kind",
        ["model._target_=builtins.dict"],
        ["model._target_=builtins.dict builds a dict, not a GAN"],
    ),
    (
        "callback of another kind",
        ["+callbacks.extra._target_=builtins.dict"],
        ["callbacks.extra._target_=builtins.dict builds a dict, not a Callback"],
    ),
    ("logger folder out of the run", ["+logger.sub_dir=../out"], ["logger.sub_dir='../out': a run writes only"]),
    ("network of another kind", ["model.generator._target_=builtins.dict"], ["builds a dict, not a network with"]),
    ("setting another refers to", ["~data.batch_size"], ["Interpolation key 'data.batch_size' not found"]),
    ("logger name out of the run", ["logger.name=../out"], ["logger.name='../out': a run writes only into its own"]),
    (
        "checkpoint name out of the run",
        ["callbacks.checkpoint.filename=/tmp/out"],
        ["callbacks.checkpoint.filename='/tmp/out': a run writes only", "give a name without .."],
    ),
    (
        "misspelt metrics setting",
        ["+metrics.every_n_epoch=1"],
        ["metrics.every_n_epoch is no setting (a typo?); the settings here: every_n_epochs, features, num_samples"],
    ),
    ("null logger", ["logger=null"], ["logger=null: logger must be one of tensorboard; ~logger leaves it out"]),
    ("null model", ["model=null"], ["model=null: model must be one of conv, mlp"]),
    ("null among models", ["model=mlp,null"], ["model=mlp,null: model must be one of conv, mlp"]),
    ("unknown loss", ["model.loss=wasserstein"], ["model.loss must be one of bce, hinge, got 'wasserstein'"]),
    ("label smoothing of 1", ["model.label_smoothing=1.0"], ["model.label_smoothing must be in [0, 1)", "got 1.0"]),
    ("label smoothing with hinge", ["model.loss=hinge", "model.label_smoothing=0.1"], ["0 unless model.loss=bce"]),
    ("EMA decay of 1", ["model.ema_decay=1.0"], ["model.ema_decay must be in [0, 1)", "got 1.0"]),
    ("text learning rate", ["model.lr=fast"], ["model.lr must be a positive finite number up to 1, got 'fast'"]),
    ("infinite learning rate", ["model.lr=inf"], ["model.lr must be a positive finite number up to 1, got inf"]),
    (
        "huge learning rate",
        ["model.lr=1e12"],
        ["model.lr must be a positive finite number up to 1, got 1000000000000.0"],
    ),
    ("zero D learning rate", ["model.lr_d=0"], ["model.lr_d must be a positive finite number up to 1, got 0"]),
    (
        "zero hidden size",
        ["+model.generator.hidden_dim=0"],
        ["model.generator.hidden_dim must be a positive integer, got 0"],
    ),
    (
        "text hidden size",
        ["+model.discriminator.hidden_dim=abc"],
        ["model.discriminator.hidden_dim must be a positive integer, got 'abc'"],
    ),
    ("negative R1 weight", ["model.r1_gamma=-1"], ["model.r1_gamma must be 0 (off) or positive, got -1"]),
    ("unknown metric features", ["metrics.features=vgg"], ["metrics.features must be one of classifier, inception"]),
    ("negative metric interval", ["metrics.every_n_epochs=-1"], ["metrics.every_n_epochs must be a non-negative"]),
    (
        "too few metric samples",
        ["metrics.num_samples=1"],
        ["metrics.num_samples must be an integer from KID's subset size (1000) to 100000, got 1"],
    ),
    (
        "fewer metric samples than KID's subset",
        ["metrics.num_samples=20"],
        ["metrics.num_samples must be an integer from KID's subset size (32) to 100000, got 20"],
    ),
    ("batch larger than the data", ["data.batch_size=1000"], ["data.batch_size 1000 is larger than the 96"]),
    ("truncated data file", ["data.root={truncated_data}"], ["corrupt Fashion-MNIST file", "train-images-idx3-ubyte"]),
    ("no data", ["data.root={tmp}/empty"], ["Fashion-MNIST not found", "apt-get install dataset-fashion-mnist"]),
    (
        "unwritable data folder",
        ["data.root=/proc/fmnist", "data.system_dir={data}/FashionMNIST/raw"],
        ["cannot create /proc/fmnist/FashionMNIST/raw", "set data.root to a writable folder"],
    ),
    ("unwritable output folder", ["hydra.run.dir=/proc/no/run"], ["cannot write the output folder /proc/no/run"]),
    ("checkpoint of another model", ["model=conv", "ckpt_path={mlp_ckpt}"], ["holds a model=mlp", "add model=mlp"]),
    (
        "resume with another recipe",
        ["resume={mlp_run}", "recipe=lab"],
        ["model.ema_decay=0.999 (this run 0.0)", "model.r1_gamma=10.0 (this run 0.0)", "first run's overrides"],
    ),
    ("resume without its data", ["resume={mlp_run}", "trainer.max_epochs=2", "data.root={tmp}/empty"], ["not found"]),
    (
        "resume with clipping",
        ["resume={mlp_run}", "trainer.max_epochs=2", "+trainer.gradient_clip_val=1.0"],
        ["trainer.gradient_clip_val=1.0: Lightning does this only with automatic optimisation"],
    ),
    ("resume with another seed", ["resume={mlp_run}", "seed=5"], ["model.noise_seed=0 (this run 5, set by seed)"]),
    (
        "checkpoint of another network size",
        ["ckpt_path={mlp_ckpt}", "+model.generator.hidden_dim=256"],
        ["was trained with model.generator.hidden_dim=<unset> (this run 256);"],
    ),
    ("checkpoint of another version", ["ckpt_path={old_ckpt}"], ["has checkpoint format 0, this code reads format 1"]),
    ("file that is no checkpoint", ["ckpt_path={not_ckpt}"], ["corrupt or unreadable checkpoint"]),
    (
        "checkpoint of a diverged run",
        ["ckpt_path={diverged_ckpt}", "trainer.max_epochs=2"],
        ["{diverged_ckpt} holds NaN or infinite values in discriminator.fc1.weight (the run diverged); start from"],
    ),
    (
        "checkpoint of a diverged optimiser",
        ["ckpt_path={diverged_adam_ckpt}", "trainer.max_epochs=2"],
        ["cannot be continued from: its optimiser state 1 holds NaN or infinite numbers (the run diverged)"],
    ),
    (
        "checkpoint without optimiser states",
        ["ckpt_path={no_adam_ckpt}", "trainer.max_epochs=2"],
        ["cannot be continued from: its 'optimizer_states' entry is missing or damaged"],
    ),
    (
        "checkpoint without a weight",
        ["ckpt_path={no_weight_ckpt}", "trainer.max_epochs=2"],
        ["{no_weight_ckpt} is a damaged checkpoint of this project: its weights lack generator.fc1.weight; start"],
    ),
    (
        "checkpoint with a weight of another shape",
        ["ckpt_path={bad_shape_ckpt}", "trainer.max_epochs=2"],
        ["its discriminator.fc1.bias is (3,), where this model has (128,)"],
    ),
    ("missing checkpoint", ["ckpt_path={tmp}/nothing.ckpt"], ["checkpoint not found"]),
    ("resume a folder without checkpoint", ["resume={tmp}"], ["checkpoint not found", "checkpoints/last.ckpt"]),
    ("resume a checkpoints folder", ["resume={mlp_run}/checkpoints"], ["(resume takes a run folder); the run folder:"]),
    ("resume a finished run", ["resume={mlp_run}", "trainer.max_epochs=1"], ["has trained 1 epoch,", "nothing to"]),
    ("resume a checkpoint file", ["resume={mlp_ckpt}"], ["resume takes a run folder, got the file", "ckpt_path="]),
    (
        "checkpoint path of a run folder",
        ["ckpt_path={mlp_run}"],
        ["ckpt_path takes a .ckpt file, got the folder {mlp_run}; continue that run with resume={mlp_run}"],
    ),
    (
        "checkpoint path of a checkpoints folder",
        ["ckpt_path={mlp_run}/checkpoints"],
        ["got the folder {mlp_run}/checkpoints; continue that run with resume={mlp_run}"],
    ),
    ("checkpoint path of another folder", ["ckpt_path={tmp}"], ["ckpt_path takes a .ckpt file, got the folder {tmp}"]),
    (
        "resume in another folder",
        ["resume={mlp_run}", "trainer.max_epochs=3", "hydra.run.dir={tmp}/elsewhere"],
        ["resume continues", "in its own folder, not in hydra.run.dir=", "ckpt_path="],
    ),
    ("resume and ckpt_path", ["resume={mlp_run}", "ckpt_path={mlp_ckpt}"], ["either resume=RUN_FOLDER or ckpt_path"]),
    ("empty resume", ["resume="], ["resume is empty; give a run folder, or leave resume out"]),
    ("empty checkpoint path", ["ckpt_path=''"], ["ckpt_path is empty; give a .ckpt file"]),
    (
        "true half precision",
        ["trainer.precision=bf16-true"],
        ["trainer.precision must be one of 32-true,", "'bf16-true'"],
    ),
    ("no fixed noise", ["model.num_fixed_noise=0"], ["model.num_fixed_noise must be an integer from 1 to 1024, got 0"]),
    ("text noise seed", ["model.noise_seed=abc"], ["model.noise_seed must be an integer from 0 to 4294967295"]),
    ("zero grid columns", ["callbacks.sample_grid.nrow=0"], ["callbacks.sample_grid.nrow must be a positive integer"]),
    ("text progress refresh", ["callbacks.progress_bar.refresh_seconds=abc"], ["refresh_seconds must be a finite"]),
    (
        "two devices without ddp",
        ["trainer.devices=2"],
        ["trainer.devices=2 runs one process per device", "hardware=ddp"],
    ),
    (
        "cuda graph on the cpu",
        ["model.cuda_graph=true"],
        ["model.cuda_graph=true replays each training step on one CUDA GPU (hardware=gpu), not on the CPU"],
    ),
    (
        "cuda graph under ddp",
        ["hardware=ddp", "trainer.accelerator=cpu", "trainer.precision=32-true", "model.cuda_graph=true"],
        ["not on DDP's processes (hardware=ddp); add model.cuda_graph=false"],
    ),
    ("clipping with manual optimisation", ["+trainer.gradient_clip_val=1.0"], ["leave trainer.gradient_clip_val out"]),
    ("accumulation", ["+trainer.accumulate_grad_batches=2"], ["leave trainer.accumulate_grad_batches out"]),
    ("no data folder", ["data.root=null"], ["cannot build data (gan.data.FashionMNISTDataModule)", "NoneType"]),
    ("empty data folder", ["data.root="], ["data.root is empty; give the folder that holds (or will hold)"]),
    (
        "text checkpoint count",
        ["callbacks.checkpoint.save_top_k=abc"],
        ["callbacks.checkpoint.save_top_k must be an integer of at least -1, got 'abc'"],
    ),
    ("empty system data folder", ["data.system_dir="], ["data.system_dir is empty; give the folder of Debian's"]),
    (
        "huge metrics sample",
        ["metrics.num_samples=1000000000"],
        ["metrics.num_samples must be an integer from KID's subset size (1000) to 100000, got 1000000000"],
    ),
    ("no optimiser steps", ["trainer.max_steps=0"], ["trainer.max_steps must be -1 (no limit) or a positive"]),
    ("text optimiser steps", ["trainer.max_steps=abc"], ["trainer.max_steps must be -1", "got 'abc'"]),
    ("no devices", ["trainer.devices=0"], ["trainer.devices must be a positive number of devices", "got 0"]),
    ("text devices", ["trainer.devices=abc"], ["trainer.devices must be a positive number", "got 'abc'"]),
    ("unwritable run folder", ["hydra.run.dir=/proc/nope"], ["cannot write the output folder /proc/nope"]),
    ("empty run folder", ["hydra.run.dir="], ["hydra.run.dir is empty; give a folder, or leave hydra.run.dir out"]),
    (
        "output folder outside the run folder",
        ["paths.output_dir=/proc/nope"],
        ["paths.output_dir='/proc/nope': a run writes only into its own run folder"],
    ),
    ("empty output folder", ["paths.output_dir="], ["paths.output_dir='': a run writes only into its own run folder"]),
    ("text download switch", ["data.download=maybe"], ["data.download must be true or false, got 'maybe'"]),
    (
        "metrics set to null",
        ["metrics=null"],
        ["metrics must be a section of settings (metrics.features=...,", "got None; metrics.every_n_epochs=0 turns"],
    ),
    ("text channels-last switch", ["model.channels_last=abc"], ["model.channels_last must be true or false"]),
    ("gpu without a gpu", ["hardware=gpu"], ["trainer.accelerator=gpu (hardware=gpu or ddp) needs an NVIDIA GPU"]),
    ("ddp without a gpu", ["hardware=ddp"], ["(hardware=gpu or ddp) needs an NVIDIA GPU", "use hardware=cpu"]),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The files the cases point at: good data, a real tiny run, and broken copies."""
    tmp = tmp_path_factory.mktemp("bad")
    write_fake_fmnist(tmp / "data" / "FashionMNIST" / "raw")
    truncated = write_fake_fmnist(tmp / "truncated" / "FashionMNIST" / "raw")
    images = truncated / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])
    result = run_script(*tiny_train_args(tmp / "data", tmp / "mlp_run"), "trainer.max_epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(tmp / "mlp_run" / "checkpoints" / "last.ckpt", weights_only=False)
    checkpoint["gan_format"] = 0
    torch.save(checkpoint, tmp / "old.ckpt")
    checkpoint["gan_format"] = 1
    checkpoint["state_dict"]["discriminator.fc1.weight"][0, 0] = float("nan")  # losses may stay finite a while
    torch.save(checkpoint, tmp / "diverged.ckpt")
    checkpoint = torch.load(tmp / "mlp_run" / "checkpoints" / "last.ckpt", weights_only=False)
    next(iter(checkpoint["optimizer_states"][1]["state"].values()))["exp_avg"].fill_(float("nan"))
    torch.save(checkpoint, tmp / "diverged_adam.ckpt")
    checkpoint["optimizer_states"] = None
    torch.save(checkpoint, tmp / "no_adam.ckpt")
    checkpoint = torch.load(tmp / "mlp_run" / "checkpoints" / "last.ckpt", weights_only=False)
    del checkpoint["state_dict"]["generator.fc1.weight"]
    torch.save(checkpoint, tmp / "no_weight.ckpt")
    checkpoint = torch.load(tmp / "mlp_run" / "checkpoints" / "last.ckpt", weights_only=False)
    checkpoint["state_dict"]["discriminator.fc1.bias"] = torch.zeros(3)
    torch.save(checkpoint, tmp / "bad_shape.ckpt")
    (tmp / "not.ckpt").write_text("hello")
    return {
        "tmp": tmp,
        "data": tmp / "data",
        "truncated_data": tmp / "truncated",
        "mlp_run": tmp / "mlp_run",
        "mlp_ckpt": tmp / "mlp_run" / "checkpoints" / "last.ckpt",
        "old_ckpt": tmp / "old.ckpt",
        "not_ckpt": tmp / "not.ckpt",
        "diverged_ckpt": tmp / "diverged.ckpt",
        "diverged_adam_ckpt": tmp / "diverged_adam.ckpt",
        "no_adam_ckpt": tmp / "no_adam.ckpt",
        "no_weight_ckpt": tmp / "no_weight.ckpt",
        "bad_shape_ckpt": tmp / "bad_shape.ckpt",
    }


def args_without_run_dir(places: dict[str, Path]) -> list[str]:
    """train.py and the tiny run's overrides, with no run folder: each test names its own (or a sweep's)."""
    return [arg for arg in tiny_train_args(places["data"], Path()) if not arg.startswith("hydra.run.dir")]


def run_sweep(places: dict[str, Path], sweep_dir: Path, *overrides: str):
    """A tiny two-job sweep (seed=0,1) of train.py in ``sweep_dir``, with ``overrides``."""
    script, *arguments = args_without_run_dir(places)
    return run_script(script, "-m", *arguments, "seed=0,1", f"hydra.sweep.dir={sweep_dir}", *overrides)


@pytest.mark.parametrize(("case", "overrides", "expected"), BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_gives_one_clear_line(case: str, overrides: list[str], expected: list[str], places, tmp_path) -> None:
    if case.endswith("without a gpu") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args = [override.format(**places) for override in overrides]
    expected = [text.format(**places) for text in expected]
    if not any(arg.startswith(("hydra.run.dir", "resume=")) for arg in args):  # a resume runs in its own folder
        args.append(f"hydra.run.dir={tmp_path / 'run'}")
    base = args_without_run_dir(places)
    result = run_script(*base, *args)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    for text in expected:
        assert text in result.stderr, (text, result.stderr[-2000:])
    if not case.startswith("unknown"):
        last_line = result.stderr.strip().splitlines()[-1]
        assert last_line.startswith("error: ") and all(text in last_line for text in expected)
    assert not list((places["mlp_run"] / ".hydra").glob("resume_*"))  # a refused resume writes nothing there
    assert not (tmp_path / "run").exists()  # a refused new run removes what it wrote, and its folder


@pytest.mark.parametrize("folder", ["hydra.run.dir", "hydra.sweep.dir"])
def test_a_folder_with_dotdot_after_a_symbolic_link_is_refused(folder: str, places, tmp_path) -> None:
    (tmp_path / "elsewhere" / "deep").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere" / "deep")
    script, *arguments = args_without_run_dir(places)
    sweep = ["-m", "seed=0,1"] if folder == "hydra.sweep.dir" else []
    result = run_script(script, *sweep, *arguments, f"{folder}={tmp_path}/link/../run")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {folder}={tmp_path}/link/../run: a .. after a symbolic link names {tmp_path}/elsewhere/run to the"
        f" system but {tmp_path}/run to Hydra; give the folder without .."
    )
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["deep", "elsewhere", "link"]  # nothing made


@pytest.mark.parametrize(
    "bad_data",
    [
        "data.root={truncated_data}",
        "data.root={tmp}/empty",
        "data.batch_size=1000",
        "metrics.num_samples=20",
        "+trainer.limit_train_batches=0.1",
        "+trainer.gradient_clip_val=1",
    ],
)
def test_bad_data_is_refused_before_lightning_prints_its_setup(bad_data: str, places, tmp_path) -> None:
    result = run_script(*args_without_run_dir(places), f"hydra.run.dir={tmp_path}/run", bad_data.format(**places))
    assert result.returncode == 1
    assert result.stdout.strip() == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr


SWEEP_REFUSALS = [
    ("resume={mlp_run}", "resume continues one run in its own folder, not in a sweep (-m); a sweep's jobs can start"),
    ("resume={mlp_run},{mlp_run}", "resume continues one run in its own folder, not in a sweep (-m)"),
    ("resume=", "resume is empty; give a run folder, or leave resume out to start a new run"),
    ("ckpt_path=", "ckpt_path is empty; give a .ckpt file, or leave ckpt_path out to start a new run"),
    ("hydra.sweeper.params={{seed:'0,1'}}", "Hydra cannot take hydra.sweeper.params on the command line; give each"),
]


@pytest.mark.parametrize(("override", "message"), SWEEP_REFUSALS)
def test_a_sweep_refuses_bad_settings_before_anything_is_written(override: str, message: str, places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_sweep(places, sweep_dir, override.format(**places))
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: ") and message in result.stderr.strip().splitlines()[-1]
    assert not sweep_dir.exists()
    assert not list((places["mlp_run"] / ".hydra").glob("resume_*"))


NEW_RUN_INTO_A_RUN = [
    (
        "hydra.run.dir={run}",
        "the run folder {run} already holds a run, whose checkpoints a new run would replace;"
        " continue it with resume={run}, or start in another folder (hydra.run.dir=FOLDER)",
    ),
    ("paths.output_dir={run}", "paths.output_dir='{run}': a run writes only into its own run folder, here {new}"),
    ("callbacks.checkpoint.dirpath={run}/checkpoints", "callbacks.checkpoint.dirpath='{run}/checkpoints': a run"),
    ("callbacks.save_on_interrupt.dirpath={run}/checkpoints", "callbacks.save_on_interrupt.dirpath='{run}/checkpo"),
    ("callbacks.sample_grid.output_dir={run}", "callbacks.sample_grid.output_dir='{run}': a run writes only into"),
    ("logger.save_dir={run}", "logger.save_dir='{run}': a run writes only into its own run folder"),
]


@pytest.mark.parametrize(("override", "message"), NEW_RUN_INTO_A_RUN)
def test_a_new_run_never_writes_over_a_runs_folder(override: str, message: str, places, tmp_path) -> None:
    run_dir, new_dir = places["mlp_run"], tmp_path / "new"
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    base = args_without_run_dir(places)
    result = run_script(*base, f"hydra.run.dir={new_dir}", override.format(run=run_dir))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {message.format(run=run_dir, new=new_dir)}")
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before
    assert not new_dir.exists()


def test_a_new_sweep_never_writes_over_a_sweeps_runs(places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "0" / "checkpoints").mkdir(parents=True)
    result = run_sweep(places, sweep_dir)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: the sweep folder {sweep_dir} already holds a sweep, whose runs this one would replace;"
        " start in another folder (hydra.sweep.dir=FOLDER)"
    )
    assert sorted(path.name for path in sweep_dir.rglob("*")) == ["0", "checkpoints"]


def test_a_run_still_training_is_not_resumed_beside_it(places) -> None:
    run_dir = places["mlp_run"]
    with hold_run_folder(run_dir):  # as the process training there holds it
        result = run_script(*args_without_run_dir(places), f"resume={run_dir}", "trainer.max_epochs=2")
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"error: the run folder {run_dir} is in use: a run is training there; resume it once that run has ended"
        )
    )
    assert not list((run_dir / ".hydra").glob("resume_*"))


def test_a_folder_that_a_run_has_claimed_is_refused_to_the_next(tmp_path: Path) -> None:
    """Two runs started in the same second: the first makes the folder's .hydra (atomically), the second is refused."""
    (tmp_path / "notes.txt").write_text("a user's file")  # a folder of the user's own is no run
    claim_run_folder(tmp_path)
    assert (tmp_path / ".hydra").is_dir()
    with pytest.raises(UserError, match="already holds a run without a last checkpoint"):
        claim_run_folder(tmp_path)


@pytest.mark.parametrize("name", ["models.txt", "metrics.csv", "loss_curve.png"])
def test_a_folder_holding_a_file_that_a_run_writes_is_refused(name: str, tmp_path: Path) -> None:
    (tmp_path / name).write_text("the user's own")
    with pytest.raises(UserError, match=f"holds {re.escape(name)}, which a run writes there and would replace"):
        claim_run_folder(tmp_path)
    assert (tmp_path / name).read_text() == "the user's own" and not (tmp_path / ".hydra").exists()


def test_a_refusal_of_a_run_without_a_last_checkpoint_names_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "models.txt").write_text("print(G)")
    with pytest.raises(UserError, match="remove what train.py left there: checkpoints/, models.txt$"):
        claim_run_folder(tmp_path)


def test_a_refused_run_leaves_the_folder_as_it_found_it(places, tmp_path) -> None:
    """Refused before training, as its settings are checked or as fit starts: the folder can be used again."""
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("a user's file")
    base = args_without_run_dir(places)
    for users_files in (["notes.txt"], ["notes.txt", "train.log"]):  # Hydra's empty log goes, a user's log stays
        if "train.log" in users_files:
            (run_dir / "train.log").write_text("a user's log")  # Hydra appends nothing to it
        for bad_input in ("model.lr=-1", f"data.root={places['truncated_data']}"):
            result = run_script(*base, f"hydra.run.dir={run_dir}", bad_input)
            assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].startswith("error: ")
            assert sorted(path.name for path in run_dir.iterdir()) == users_files
    assert (run_dir / "train.log").read_text() == "a user's log"
    result = run_script(*base, f"hydra.run.dir={run_dir}", "trainer.max_epochs=1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / "notes.txt").read_text() == "a user's file"


def test_a_refused_run_removes_only_the_folders_it_made(places, tmp_path) -> None:
    empty, link, target = tmp_path / "empty", tmp_path / "link", tmp_path / "target"
    empty.mkdir()
    target.mkdir()
    link.symlink_to(target)
    for run_dir in (empty, link, tmp_path / "new" / "a" / "b", tmp_path / "cwd"):
        result = run_script(*args_without_run_dir(places), f"hydra.run.dir={run_dir}", "model.lr=-1")
        assert result.returncode == 1 and "Traceback" not in result.stderr
    assert empty.is_dir() and link.is_symlink() and target.is_dir()  # the user's, though empty
    assert not (tmp_path / "new").exists()  # all three made by the run
    (tmp_path / "cwd").mkdir()
    result = run_script(*args_without_run_dir(places), "hydra.run.dir=.", "model.lr=-1", cwd=tmp_path / "cwd")
    assert result.returncode == 1 and (tmp_path / "cwd").is_dir()  # never the current folder


@pytest.mark.parametrize("subdir", ["../other", "/tmp/other/${hydra.job.num}"])
def test_a_sweep_whose_jobs_would_share_or_leave_its_folder_is_refused(subdir: str, places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_sweep(places, sweep_dir, f"hydra.sweep.subdir={subdir}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: hydra.sweep.subdir={subdir}: each job needs a folder of its own inside the sweep folder; give a name"
        " made from the job, such as ${hydra.job.num} (the default)"
    )
    assert not sweep_dir.exists()


def test_a_sweep_whose_subdir_gives_two_jobs_one_folder_is_refused(places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_sweep(places, sweep_dir, "hydra.sweep.subdir=lr_${model.lr}")  # seed=0,1: the same lr
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: hydra.sweep.subdir=lr_${model.lr} puts the jobs 'seed=0' and 'seed=1' into one folder, lr_0.002, where"
        " one would write over the other; give each job its own, e.g. with ${hydra.job.num} (the default)"
    )
    assert not sweep_dir.exists()


@pytest.mark.parametrize(
    ("subdir", "refusal"),
    [
        (
            "same",
            "puts the jobs 'seed=0' and 'seed=1' into one folder, same, where one would write over the other; give each"
            " job its own, e.g. with ${hydra.job.num} (the default)",
        ),
        (
            ".",
            "puts the job 'seed=0' into the sweep folder itself; each job needs a folder of its own inside it, such as"
            " ${hydra.job.num} (the default)",
        ),
    ],
)
def test_a_sweep_of_a_fixed_subdir_is_refused_for_two_jobs(subdir: str, refusal: str, places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_sweep(places, sweep_dir, f"hydra.sweep.subdir={subdir}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: hydra.sweep.subdir={subdir} {refusal}"
    assert not sweep_dir.exists()


def test_a_one_job_sweep_may_name_its_folder(places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    script, *arguments = args_without_run_dir(places)
    result = run_script(script, "-m", *arguments, "seed=1", f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=only")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (sweep_dir / "only" / "checkpoints" / "last.ckpt").is_file()


def test_a_sweep_with_a_misspelt_setting_is_refused_in_one_line(places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    for typo in ("model.lrr=1", "model.lrr=1,2"):  # given once, or swept
        result = run_sweep(places, sweep_dir, typo)
        assert result.returncode == 1
        assert result.stderr.strip().startswith("error: model.lrr=1: model.lrr is no setting (a typo?); the settings")
        assert len(result.stderr.strip().splitlines()) == 1 and not sweep_dir.exists()


def test_a_misspelt_setting_is_refused_in_one_line_when_hydra_prints_the_config(places) -> None:
    script, *arguments = args_without_run_dir(places)
    result = run_script(script, "--cfg", "job", "--resolve", *arguments, "model.lrr=1")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: model.lrr=1: model.lrr is no setting (a typo?); the settings")
    assert len(result.stderr.strip().splitlines()) == 1 and "lr_scaling" not in result.stdout


def test_a_one_job_sweep_into_the_sweep_folder_itself_is_refused(places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    script, *arguments = args_without_run_dir(places)
    result = run_script(script, "-m", *arguments, "seed=1", f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=.")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: hydra.sweep.subdir=. puts the sweep's one job into the sweep folder itself; each job needs a folder of"
        " its own inside it, such as ${hydra.job.num} (the default)"
    )
    assert not sweep_dir.exists()


def test_a_sweep_of_two_alike_jobs_in_one_folder_is_refused(places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    script, *arguments = args_without_run_dir(places)
    result = run_script(
        script, "-m", *arguments, "seed=1,1", f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=s${seed}"
    )
    assert result.returncode == 1
    assert "puts the jobs 'seed=1' and 'seed=1' into one folder, s1," in result.stderr.splitlines()[-1]
    assert not sweep_dir.exists()


def test_a_sweep_subdir_may_use_hydras_resolver(places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_sweep(places, sweep_dir, "hydra.sweep.subdir=job${hydra:job.num}")  # HydraConfig: the job's
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(path.parent.parent.name for path in sweep_dir.glob("*/checkpoints/last.ckpt")) == ["job0", "job1"]


def test_a_sweep_whose_subdir_resolves_outside_its_folder_is_refused(places, tmp_path) -> None:
    sweep_dir, data = tmp_path / "sweep", places["data"]  # data.root: an absolute path
    result = run_sweep(places, sweep_dir, "hydra.sweep.subdir=${data.root}/${hydra.job.num}")
    assert result.returncode == 1
    assert f"puts the job 'seed=0' into {data}/0, outside the sweep folder" in result.stderr.splitlines()[-1]
    assert not sweep_dir.exists() and not (data / "0").exists()


def test_a_glob_sweep_is_checked_like_any_other(places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / "multirun.yaml").write_text("hydra: {}")  # an earlier sweep
    result = run_sweep(places, sweep_dir, "loss=glob(*)")
    assert result.returncode == 1
    assert "already holds a sweep, whose runs this one would replace" in result.stderr.strip().splitlines()[-1]
    assert sorted(path.name for path in sweep_dir.iterdir()) == ["multirun.yaml"]


def test_a_sweep_with_a_job_hydra_cannot_compose_writes_nothing(places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_sweep(places, sweep_dir, "hardware=cpu,tpu")
    assert result.returncode == 1
    assert "error: the sweep's job seed=0 hardware=tpu: In 'train': Could not find 'hardware/tpu'" in result.stderr
    assert "Available options in 'hardware':" in result.stderr
    assert not sweep_dir.exists()  # Hydra's sweeper left a multirun.yaml, which refused the same sweep once fixed


def test_a_sweep_folder_that_held_a_sweep_is_refused(places, tmp_path) -> None:
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / "multirun.yaml").write_text("hydra: {}")  # an earlier sweep, its runs in subfolders of their own
    result = run_sweep(places, sweep_dir)
    assert result.returncode == 1
    assert "already holds a sweep, whose runs this one would replace" in result.stderr.strip().splitlines()[-1]
    assert sorted(path.name for path in sweep_dir.iterdir()) == ["multirun.yaml"]
