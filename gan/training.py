"""Builds the data, model, callbacks, logger and trainer from the Hydra config and fits."""

import contextlib
import difflib
import fcntl
import inspect
import logging
import math
import os
import re
import shutil
import signal
import warnings
from collections.abc import Callable, Iterator
from functools import cache, partial
from pathlib import Path
from typing import Any

import torch
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback as HydraCallback
from hydra.types import RunMode
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError, InterpolationKeyError
from pytorch_lightning import Callback, LightningDataModule, Trainer, seed_everything
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import Logger, TensorBoardLogger
from pytorch_lightning.utilities.exceptions import MisconfigurationException, SIGTERMException
from torch.utils.tensorboard import SummaryWriter

from gan.callbacks import RUN_FILES, DivergenceCheck, ImageQuality, LogConfig
from gan.checkpoint import (
    model_name,
    non_finite,
    optimiser_states_problem,
    read_checkpoint,
    weights_problem,
    whole_epochs,
)
from gan.errors import (
    MAX_SEED,
    UserError,
    check_hydra_arguments,
    composition_refusal,
    declared_settings,
    exit_on_user_error,
    first_line,
    outermost_missing,
    remove_made_folders,
    require_declared,
    require_int,
    require_sections,
    require_writable_folder,
    section_settings,
)
from gan.module import GAN

SAME_MATHS_SETTINGS = ("model.cuda_graph",)  # how the steps run, not what they compute: ignored on resuming
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "64-true")  # true 16-bit weights make these GANs diverge


def mixed_precision() -> str:
    """Lightning's precision flag for this GPU: bf16 where supported, else fp16 with loss scaling."""
    return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "16-mixed"


def run_dir(resume: str | None, new_run_dir: str) -> str:
    """Hydra's run folder: the folder of the run being resumed, else a new one."""
    return str(resume) if resume else new_run_dir


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
OPTIONAL_GROUPS = ("logger",)  # the groups a run can leave out, with ~GROUP
REMOVAL_REFUSAL = (
    "~{0}: a run needs its {0} settings; only ~logger can be left out (and one callback with callbacks.NAME=null)"
)


def config_groups() -> set[str]:
    """The config groups of train.py (``model``, ``hardware``, ...): the folders in ``conf/``."""
    return {folder.name for folder in CONF_DIR.iterdir() if folder.is_dir()}


@cache
def group_nodes() -> frozenset[str]:
    """The top-level nodes that the config groups set: a group's own (``data``), or, for a file of the ``_global_``
    package, the nodes it sets (``hardware=cpu`` sets ``trainer``; ``loss``, ``hardware`` and ``recipe`` are none)."""
    nodes = set()
    for path in CONF_DIR.glob("*/*.yaml"):
        if path.read_text().startswith("# @package _global_"):
            nodes |= set(declared_settings(path)) - {"defaults"}
        else:
            nodes.add(path.parent.name)
    return frozenset(nodes)


def check_command_line(arguments: list[str]) -> None:
    """Refuse in one line, before Hydra answers in several or with a traceback: ``GROUP=null`` (or null in a sweep's
    list; naming the choices), ``~resume`` or ``~ckpt_path`` (Hydra: they do not exist), ``KEY=~/...``, a misspelt
    setting and ``hydra.sweeper.params``."""
    sweep_advice = "give each swept setting as KEY=A,B (python train.py -m model=mlp,conv seed=0,1)"
    check_hydra_arguments(arguments, CONF_DIR, "train", REMOVAL_REFUSAL.format, sweep_advice)
    groups = config_groups()
    for argument in arguments:
        key, _, value = argument.partition("=")
        group = key.lstrip("+")
        if group in groups and "null" in (choice.strip() for choice in value.split(",")):
            choices = ", ".join(sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml")))
            leave_out = f"; ~{group} leaves it out" if group in OPTIONAL_GROUPS else ""
            raise UserError(f"{argument}: {group} must be one of {choices}{leave_out}")


RUN_MARKERS = (".hydra", "checkpoints", "samples", "tensorboard")  # what train.py writes, any callback left out


def is_training_run(folder: str | Path) -> bool:
    """Whether ``folder`` is a training run's folder (train.py left one of its subfolders there)."""
    return any((Path(folder) / marker).is_dir() for marker in RUN_MARKERS)


SWEEP_RECORD = "multirun.yaml"  # Hydra's record of a sweep, in its folder


def _created(make: Callable[[], Any]) -> bool:
    """Whether ``make()`` created its file or folder, which fails when it exists. Creating is atomic: of two runs
    started in the same second, one creates it."""
    try:
        make()
    except FileExistsError:
        return False
    return True


def last_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint a run folder is continued from (``resume=``)."""
    return Path(run_dir) / "checkpoints" / "last.ckpt"


def claim_run_folder(run_dir: Path) -> None:
    """Make a new run's ``.hydra`` record folder in ``run_dir``, refusing a folder that holds a run (or that another
    run, started in the same second, has just claimed), or files that a run writes, which it would replace."""
    if last_checkpoint(run_dir).is_file():
        raise UserError(
            f"the run folder {run_dir} already holds a run, whose checkpoints a new run would replace;"
            f" continue it with resume={run_dir}, or start in another folder (hydra.run.dir=FOLDER)"
        )
    files = [name for name in RUN_FILES if (run_dir / name).exists() or (run_dir / name).is_symlink()]
    if is_training_run(run_dir) or not files and not _created((run_dir / ".hydra").mkdir):
        found = [f"{marker}/" for marker in RUN_MARKERS if (run_dir / marker).is_dir()] + files
        raise UserError(
            f"the run folder {run_dir} already holds a run without a last checkpoint (one stopped before its first"
            " checkpoint, or one still in its first epoch); start in another folder (hydra.run.dir=FOLDER), or, if"
            f" no run uses it, remove what train.py left there: {', '.join(found)}"
        )
    if files:
        raise UserError(
            f"the run folder {run_dir} holds {', '.join(files)}, which a run writes there and would replace; start"
            " in another folder (hydra.run.dir=FOLDER)"
        )


_made_run_folders: dict[Path, Path] = {}  # a new run's folder -> the outermost folder that its claim made
_run_folder_locks: list[int] = []  # the lock of this process's run folder (lock_run_folder), held until it ends
_new_log_files: set[Path] = set()  # Hydra's log files that a new run's claim found missing (Hydra makes them next)


def release_run_folder(run_dir: Path, log_name: str) -> None:
    """Remove what a new run stopped before training wrote in ``run_dir``, so the folder can be used again: its
    ``.hydra`` record and ``tensorboard/`` (both refused in a folder that held them), Hydra's log file when the run
    made it and it is empty, and the folders the run made, when nothing else is in them."""
    for folder in (".hydra", "tensorboard"):
        shutil.rmtree(run_dir / folder, ignore_errors=True)
    log_file = run_dir / log_name
    if log_file in _new_log_files and log_file.is_file() and log_file.stat().st_size == 0:
        log_file.unlink()
    remove_made_folders(run_dir, _made_run_folders.get(run_dir))  # None: the user's folder, with all else in it


def require_folder_name(option: str, folder: Any) -> str:
    """``folder``, unless empty (an unset shell variable, which would write into the current folder) or ambiguous."""
    if not str(folder).strip():
        raise UserError(f"{option} is empty; give a folder, or leave {option} out for one named by the date and time")
    if str(folder).startswith("~"):
        raise UserError(
            f"{option}={folder}: Hydra does not expand ~ (it would make a folder named ~ here); give the whole path,"
            f" such as {os.path.expanduser(folder)}"
        )
    if (system := os.path.realpath(folder)) != os.path.realpath(hydra_folder := os.path.abspath(folder)):
        raise UserError(  # Hydra would write its record into one and its log into the other
            f"{option}={folder}: a .. after a symbolic link names {system} to the system but {hydra_folder} to Hydra;"
            " give the folder without .."
        )
    return str(folder)


def _is_ddp_child(hydra_config: DictConfig) -> bool:
    """Whether Lightning's DDP started this process, in the run folder of the process that started it (with
    ``LOCAL_RANK`` set and no record folder of its own)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" and hydra_config.output_subdir is None


@contextlib.contextmanager
def checks_or_exit() -> Iterator[None]:
    """Stop the program with one line when a check in a Hydra callback fails in any way: Hydra would only warn about
    an exception and go on without the rest of the checks."""
    with exit_on_user_error():
        try:
            yield
        except UserError:
            raise
        except Exception as error:  # noqa: BLE001 - a check that cannot be made is a refusal
            raise UserError(f"cannot check the output folders: {first_line(error)}") from error


class OutputDirCheck(HydraCallback):
    """Stops with one line, before Hydra writes anything, when the run or sweep folder cannot be written, already
    holds runs that a new one would write over, or a resume would be refused (so a refused resume leaves nothing in
    the run folder)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with checks_or_exit():
            check_checkpoint_options(config)
            run_dir = Path(require_folder_name("hydra.run.dir", config.hydra.run.dir))
            if config.resume:
                self._check_resumable(config, run_dir)
            made = outermost_missing(run_dir)
            require_writable_folder("output folder", run_dir)
            if not _is_ddp_child(config.hydra):  # held until the process ends; a refused resume writes nothing
                _run_folder_locks.append(lock_run_folder(run_dir))
            if not config.resume and not _is_ddp_child(config.hydra):
                claim_run_folder(run_dir)
                run_dir = Path(os.path.abspath(run_dir))
                if made is not None:
                    _made_run_folders[run_dir] = made
                if not (log_file := run_dir / f"{config.hydra.job.name}.log").exists():
                    _new_log_files.add(log_file)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with checks_or_exit():
            for override in OverridesParser.create().parse_overrides(config.hydra.overrides.task):
                if override.key_or_group == "resume" and (override.is_sweep_override() or override.value()):
                    raise UserError(
                        f"{override.input_line}: resume continues one run in its own folder, not in a sweep (-m);"
                        " a sweep's jobs can start from a checkpoint with ckpt_path=FILE"
                    )
            check_checkpoint_options(config)  # an empty value, given once for every job
            subdir = str(OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"])
            literal = "${" not in subdir and not is_basic_sweeper(config)  # the basic sweeper's jobs are known here
            if literal or Path(subdir).is_absolute() or ".." in Path(subdir).parts:
                raise UserError(
                    f"hydra.sweep.subdir={subdir}: each job needs a folder of its own inside the sweep folder; give a"
                    " name made from the job, such as ${hydra.job.num} (the default)"
                )
            check_sweep_jobs(config, subdir)
            sweep_dir = require_writable_folder(
                "output folder", require_folder_name("hydra.sweep.dir", config.hydra.sweep.dir)
            )
            if is_training_run(sweep_dir):
                raise UserError(
                    f"the sweep folder {sweep_dir} is a run's folder; start in another folder (hydra.sweep.dir=FOLDER)"
                )
            record = sweep_dir / SWEEP_RECORD  # Hydra writes it next, over the empty file made here
            holds_runs = any(is_training_run(job_dir) for job_dir in sweep_dir.iterdir())
            if holds_runs or not _created(partial(record.touch, exist_ok=False)):
                raise UserError(
                    f"the sweep folder {sweep_dir} already holds a sweep, whose runs this one would replace;"
                    " start in another folder (hydra.sweep.dir=FOLDER)"
                )

    @staticmethod
    def _check_resumable(config: DictConfig, run_dir: Path) -> None:
        """``resume=`` must name a run folder whose last checkpoint this run can continue, in that folder."""
        run, checkpoint = Path(config.resume), last_checkpoint(config.resume)
        if run_dir.resolve() != run.resolve():
            raise UserError(
                f"resume continues {run} in its own folder, not in hydra.run.dir={run_dir}; leave hydra.run.dir out,"
                f" or start a new run there from the checkpoint with ckpt_path={checkpoint}"
            )
        if run.is_file():
            raise UserError(f"resume takes a run folder, got the file {run}; continue from a file with ckpt_path={run}")
        if not checkpoint.is_file():
            hint = f"; the run folder: resume={run.parent}" if last_checkpoint(run.parent).is_file() else ""
            raise UserError(f"resume: checkpoint not found: {checkpoint} (resume takes a run folder){hint}")
        check_config(config)
        resume_checkpoint(config)


def is_basic_sweeper(config: DictConfig) -> bool:
    """Whether the sweep runs Hydra's basic sweeper, whose jobs are all known before it starts."""
    return config.hydra.sweeper._target_ == f"{BasicSweeper.__module__}.{BasicSweeper.__name__}"


def check_sweep_jobs(config: DictConfig, subdir: str) -> None:
    """Compose each job of Hydra's basic sweep as its launcher will, before anything is written: refuse a job that
    cannot be composed (Hydra would leave a sweep folder that refuses the next sweep) or a ``hydra.sweep.subdir``
    that gives two jobs one folder (one would write over the other)."""
    if not is_basic_sweeper(config):
        return  # another sweeper chooses its jobs as it goes
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    loader = GlobalHydra.instance().config_loader()
    overrides = OverridesParser.create(config_loader=loader).parse_overrides(  # the loader: for glob(...) sweeps
        params + list(config.hydra.overrides.task)
    )
    swept = {override.get_key_element() for override in overrides if override.is_sweep_override()}
    first_job_in: dict[str, tuple[int, str]] = {}  # folder: the number and name of the first job there
    sweep_config = HydraConfig.instance().cfg
    for num, job in enumerate(BasicSweeper.split_arguments(overrides, None)[0]):
        name = " ".join(override for override in job if override.partition("=")[0] in swept)
        try:
            job_config = loader.load_sweep_config(config, list(job))
            with open_dict(job_config):
                job_config.hydra.job.id = job_config.hydra.job.num = num
            HydraConfig.instance().set_config(job_config)  # as Hydra's run_job does, for ${hydra:...} in the subdir
            folder = os.path.normpath(str(job_config.hydra.sweep.subdir))
        except Exception as error:  # noqa: BLE001 - Hydra's composition errors: its message, as for one run
            raise UserError(composition_refusal(error, list(job)) or f"the sweep's job {name or 0}: {error}") from None
        finally:
            HydraConfig.instance().cfg = sweep_config
        if folder == "." or os.path.isabs(folder) or folder.split(os.sep)[0] == "..":  # ${oc.env:...}: "", "/..."
            where = "the sweep folder itself" if folder == "." else f"{folder}, outside the sweep folder"
            job_name = f"the job '{name}'" if name else "the sweep's one job"  # nothing swept: one job
            raise UserError(
                f"hydra.sweep.subdir={subdir} puts {job_name} into {where}; each job needs a folder of its own"
                " inside it, such as ${hydra.job.num} (the default)"
            )
        if (first := first_job_in.setdefault(folder, (num, name)))[0] != num:  # also two alike jobs (seed=1,1)
            other = first[1]
            raise UserError(
                f"hydra.sweep.subdir={subdir} puts the jobs '{other}' and '{name}' into one folder, {folder}, where"
                " one would write over the other; give each job its own, e.g. with ${hydra.job.num} (the default)"
            )


def record_dir(resume: str | None, resumed_record: str) -> str:
    """Hydra's record folder in the run folder: ``.hydra``, or a new one for a resumed run, whose first record stays."""
    return resumed_record if resume else ".hydra"


def check_checkpoint_options(cfg: DictConfig) -> None:
    """``resume`` and ``ckpt_path``: at most one, and not empty (an unset shell variable must not start a new run)."""
    for name, takes in (("resume", "a run folder"), ("ckpt_path", "a .ckpt file")):
        if cfg[name] is not None and not str(cfg[name]).strip():
            raise UserError(f"{name} is empty; give {takes}, or leave {name} out to start a new run")
    if cfg.resume and cfg.ckpt_path:
        raise UserError("give either resume=RUN_FOLDER or ckpt_path=FILE, not both")


def resume_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint to continue from (``resume=RUN`` or ``ckpt_path=FILE``), checked against this run's model."""
    check_checkpoint_options(cfg)
    path = last_checkpoint(cfg.resume) if cfg.resume else cfg.ckpt_path
    if path is None:
        return None
    if Path(path).is_dir():
        run = next((run for run in (Path(path), Path(path).parent) if last_checkpoint(run).is_file()), None)
        hint = "" if run is None else f"; continue that run with resume={run}"
        raise UserError(f"ckpt_path takes a .ckpt file, got the folder {path}{hint}")
    checkpoint = read_checkpoint(path)
    earlier = "start from an earlier checkpoint of the run with ckpt_path=RUN/checkpoints/epoch_NNN.ckpt"
    if broken := non_finite(checkpoint["state_dict"]):
        raise UserError(
            f"{path} holds NaN or infinite values in {broken[0]}{' and others' * (len(broken) > 1)} (the run"
            f" diverged); {earlier}"
        )
    if problem := optimiser_states_problem(checkpoint):
        raise UserError(f"{path} cannot be continued from: {problem}; {earlier}")
    check_same_model(path, checkpoint["hyper_parameters"], cfg.model)
    with torch.random.fork_rng(devices=[]):  # the weights a GAN starts with are drawn from the training's numbers
        expected = instantiate(cfg.model).state_dict()
    if problem := weights_problem(checkpoint["state_dict"], expected):
        raise UserError(f"{path} is a damaged checkpoint of this project: {problem}; {earlier}")
    trained = whole_epochs(checkpoint)
    if trained >= cfg.trainer.max_epochs:
        raise UserError(
            f"{path} has trained {trained} epoch{'s' * (trained != 1)}, trainer.max_epochs={cfg.trainer.max_epochs}:"
            f" nothing to continue; give trainer.max_epochs above {trained}"
        )
    return str(path)


def check_same_model(path: str | Path, saved: dict[str, Any], model: DictConfig) -> None:
    """Refuse a checkpoint whose networks or training recipe (the GAN's saved arguments) differ from ``model``."""
    for net in ("generator", "discriminator"):
        saved_target, target = saved[net]["_target_"], model[net]["_target_"]
        if saved_target != target:
            raise UserError(
                f"{path} holds a model={model_name(saved_target)} {net}, but this run builds"
                f" model={model_name(target)}; add model={model_name(saved_target)}"
            )
    # the top-level _target_, _recursive_ and _convert_ tell Hydra how to build the GAN: not its arguments
    arguments = {key: value for key, value in OmegaConf.to_container(model, resolve=True).items() if key[0] != "_"}
    # a setting newer than the checkpoint (model.fused_adam) has the GAN's default, as when the GAN is rebuilt from it
    parameters = inspect.signature(GAN).parameters.values()
    defaults = {arg.name: arg.default for arg in parameters if arg.default is not inspect.Parameter.empty}
    saved, this = _flatten(defaults | saved, "model."), _flatten(arguments, "model.")
    for setting in SAME_MATHS_SETTINGS:  # a GPU run's checkpoint may go on on the CPU, and back
        saved.pop(setting, None)
        this.pop(setting, None)
    sources = _flatten(OmegaConf.to_container(model, resolve=False), "model.")  # "${seed}" for model.noise_seed
    differing_keys = [key for key in sorted(saved.keys() | this.keys()) if saved.get(key) != this.get(key)]
    differing = [
        f"{key}={saved.get(key, '<unset>')} (this run {this.get(key, '<unset>')}{_set_by(sources.get(key))})"
        for key in differing_keys
        if _source(sources.get(key)) not in differing_keys  # model.generator.latent_dim: model.latent_dim says it
    ]
    if differing:
        raise UserError(
            f"{path} was trained with {', '.join(differing)}; continue it with the first run's overrides"
            " (in its .hydra/overrides.yaml)"
        )


def _source(value: Any) -> str | None:
    """The setting that a config value takes its value from (``seed`` for ``${seed}``), or None."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    return None


def _set_by(value: Any) -> str:
    """``", set by seed"`` for a setting that the config takes from another (``${seed}``), else nothing."""
    return f", set by {source}" if (source := _source(value)) else ""


def _flatten(config: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``{"generator": {"latent_dim": 100}}`` -> ``{"model.generator.latent_dim": 100}`` (with prefix ``model.``)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_config(cfg: DictConfig) -> None:
    """Refuse settings that would fail late or silently, with one line naming the value and what is allowed."""
    try:
        _check_settings(cfg)
    except ConfigAttributeError as error:  # a setting removed with ~, such as ~trainer (whose hardware keys stay)
        raise UserError(f"{error.full_key} is missing: a run needs it (removed with ~?)") from None


def check_references(cfg: DictConfig) -> None:
    """Refuse a ``${...}`` whose setting was removed (``~data.batch_size``, which ``model.batch_size`` names)."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except InterpolationKeyError as error:
        raise UserError(f"{error.full_key}: {first_line(error)} (removed with ~?)") from None


def _section_refusal(cfg: DictConfig, name: str) -> str:
    """The refusal of train.yaml's setting ``name`` removed with ``~``, or of its ``metrics`` section set to a value."""
    if name != "metrics" or name not in cfg:
        return REMOVAL_REFUSAL.format(name)
    settings = section_settings(CONF_DIR / "train.yaml", "metrics")
    return (
        f"metrics must be a section of settings ({settings}), got {cfg.metrics!r}; metrics.every_n_epochs=0 turns the"
        " measurements off"
    )


def _check_settings(cfg: DictConfig) -> None:
    nodes = group_nodes()
    refusal = partial(_section_refusal, cfg)
    require_sections(cfg, CONF_DIR / "train.yaml", refusal, sections=["metrics"], also=nodes, optional=["logger"])
    require_declared(cfg, CONF_DIR / "train.yaml", ["metrics"], group_nodes=nodes)
    require_declared(cfg.paths, CONF_DIR / "paths" / "default.yaml", prefix="paths.")  # nothing else reads paths
    if cfg.trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UserError(
            f"trainer.accelerator={cfg.trainer.accelerator} (hardware=gpu or ddp) needs an NVIDIA GPU with CUDA, but"
            " torch.cuda.is_available() is False here; use hardware=cpu"
        )
    require_int("trainer.max_epochs", cfg.trainer.max_epochs, least=1)
    require_int("trainer.log_every_n_steps", cfg.trainer.log_every_n_steps, least=0)  # 0: no step logging
    require_int("seed", cfg.seed, least=0, most=MAX_SEED)
    for name, off in (("gradient_clip_val", (None, 0)), ("accumulate_grad_batches", (1,))):
        if (value := cfg.trainer.get(name, off[0])) not in off:  # before the Trainer prints its setup
            raise UserError(
                f"trainer.{name}={value}: Lightning does this only with automatic optimisation, and a GAN's two"
                f" networks are optimised by hand; leave trainer.{name} out"
            )
    if not (isinstance(deterministic := cfg.trainer.get("deterministic"), bool) or deterministic == "warn"):
        raise UserError(f"trainer.deterministic must be true, false or warn, got {deterministic!r}")
    if cfg.trainer.precision not in PRECISIONS:
        raise UserError(f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {cfg.trainer.precision!r}")
    max_steps = cfg.trainer.max_steps
    if max_steps != -1 and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise UserError(
            f"trainer.max_steps must be -1 (no limit) or a positive integer (optimiser steps, two a batch),"
            f" got {max_steps!r}"
        )
    devices = cfg.trainer.devices
    if not _is_devices(devices):
        raise UserError(
            f"trainer.devices must be a positive number of devices, -1 (all), auto or a list of device indices,"
            f" got {devices!r}"
        )
    if devices not in (1, "1", [0], "auto") and not runs_ddp(cfg):
        raise UserError(
            f"trainer.devices={devices} runs one process per device, which needs hardware=ddp (DDP that allows each"
            " step's unused network); for CPU processes add trainer.accelerator=cpu trainer.precision=32-true"
        )
    if cfg.model.get("cuda_graph") is True and (cfg.trainer.accelerator == "cpu" or runs_ddp(cfg)):
        where = "DDP's processes (hardware=ddp)" if runs_ddp(cfg) else "the CPU (trainer.accelerator=cpu)"
        raise UserError(
            f"model.cuda_graph=true replays each training step on one CUDA GPU (hardware=gpu), not on {where};"
            " add model.cuda_graph=false"
        )
    if checkpoint := cfg.callbacks.get("checkpoint"):  # Lightning would compare a text with a number
        require_int("callbacks.checkpoint.save_top_k", checkpoint.get("save_top_k", 1), least=-1)  # -1: all
        require_int("callbacks.checkpoint.every_n_epochs", checkpoint.get("every_n_epochs", 1), least=0)
    limit = cfg.trainer.get("limit_train_batches")
    is_batches = isinstance(limit, int) and not isinstance(limit, bool) and limit > 0
    if limit is not None and not (is_batches or isinstance(limit, float) and 0.0 < limit <= 1.0):
        raise UserError(
            f"trainer.limit_train_batches must be a positive whole number of batches or a fraction of the epoch in"
            f" (0, 1], got {limit!r}"
        )


def runs_ddp(cfg: DictConfig) -> bool:
    """Whether ``trainer.strategy`` is one of Lightning's DDP strategies (hardware=ddp)."""
    return "ddp" in str(cfg.trainer.get("strategy", "auto"))


def _is_devices(devices: Any) -> bool:
    """Whether ``devices`` is a Lightning ``devices`` setting: a count (-1: all), "auto" or a list of indices."""
    if isinstance(devices, str):
        return devices == "auto" or devices.lstrip("-").isdigit() and _is_devices(int(devices))
    if isinstance(devices, ListConfig | list):
        return len(devices) > 0 and all(
            isinstance(index, int) and not isinstance(index, bool) and index >= 0 for index in devices
        )
    return isinstance(devices, int) and not isinstance(devices, bool) and (devices >= 1 or devices == -1)


def hide_cuda_without_gpu(cfg: DictConfig) -> None:
    """A CPU run on a machine without a GPU hides CUDA from torch: with a CUDA build of torch, each Adam step would
    otherwise try to load NVML to see whether a GPU has appeared, about 0.15 ms a step (README, Performance).

    Where a GPU is present nothing changes, so a later ``hardware=gpu`` run of the same sweep still finds it.
    """
    if cfg.trainer.accelerator == "cpu" and not torch.cuda.is_available():
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


def _instantiate(name: str, config: DictConfig, kind: type, **kwargs: Any) -> Any:
    """Hydra's ``instantiate`` of the config at ``name``, a ``kind``; a failure to build it is one line naming
    ``name``."""
    if not isinstance(config, DictConfig) or "_target_" not in config:
        raise UserError(f"{name} must be a config with a _target_ (the class to build), got {config!r}")
    try:
        built = instantiate(config, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while isinstance(cause, InstantiationException):  # a network that the GAN builds inside its own build
            cause = cause.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        cause = first_line(error.__cause__ or error)
        raise UserError(
            f"cannot build {name} ({config.get('_target_')}) from its settings: {cause}{_close_argument(cause, config)}"
        ) from error
    if not isinstance(built, kind):
        raise UserError(f"{name}._target_={config._target_} builds a {type(built).__name__}, not a {kind.__name__}")
    return built


def _close_argument(message: str, config: DictConfig) -> str:
    """ " (did you mean NAME?)" when ``message`` says a class got an unexpected keyword argument close to one of its
    arguments' names (the class named in ``message``, else the config's target), else " (CLASS takes: ...)"; or ""."""
    unexpected = re.search(r"(?:target '([\w.]+)'.*)?unexpected keyword argument '(\w+)'", message)
    if unexpected is None:
        return ""
    try:
        target = get_object(unexpected[1] or config._target_)
        parameters = inspect.signature(target).parameters.values()
    except Exception:  # noqa: BLE001 - no suggestion, then
        return ""
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = [parameter.name for parameter in parameters if parameter.kind in keyword]
    if close := difflib.get_close_matches(unexpected[2], names, n=1, cutoff=0.8):
        return f" (did you mean {close[0]}?)"
    return f" ({target.__name__} takes: {', '.join(names)})" if names else ""


def check_logger_settings(logger: Logger, config: DictConfig) -> None:
    """Refuse a misspelt TensorBoard setting (``+logger.flush_sec=10``): TensorBoardLogger hands the settings it does
    not know to torch's SummaryWriter, which would refuse them only once training starts."""
    if not isinstance(logger, TensorBoardLogger):
        return
    known = {*inspect.signature(TensorBoardLogger).parameters, *inspect.signature(SummaryWriter).parameters}
    known -= {"kwargs", "log_dir"}  # log_dir: the logger sets it
    if unknown := sorted(set(config) - known - {"_target_"}):
        raise UserError(f"logger.{unknown[0]} is no setting (a typo?); the settings here: {', '.join(sorted(known))}")


def _not_an_advert(record: logging.LogRecord) -> bool:
    return "litlogger" not in record.getMessage()


def quiet_lightning() -> None:
    """Hide notices, printed with their source paths, that say nothing about the run: Lightning's advert for a cloud
    logger, its use of a name torch has deprecated, its note that a resumed run's checkpoint folder holds files, and
    torchmetrics' note that KID keeps its features in memory (10 MB of the classifier's features)."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_not_an_advert)
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)
    warnings.filterwarnings("ignore", r"Checkpoint directory .* exists and is not empty")
    warnings.filterwarnings("ignore", r"Metric `Kernel Inception Distance` will save all extracted features")


def check_fraction_of_batches(cfg: DictConfig, num_batches: int) -> None:
    """Refuse a ``trainer.limit_train_batches`` fraction that leaves no batch of the epoch's ``num_batches`` (one
    process; Lightning would say so after printing the model's summary)."""
    limit = cfg.trainer.get("limit_train_batches")
    if isinstance(limit, float) and int(limit * num_batches) < 1 and not runs_ddp(cfg):
        raise UserError(
            f"trainer.limit_train_batches={limit} gives no batch: that fraction of an epoch's {num_batches} batches is"
            f" under one; give at least {math.ceil(1e4 / num_batches) / 1e4:g}, or a whole number of batches"
        )


def build(cfg: DictConfig, extra_callbacks: list[Callback] = ()) -> tuple[LightningDataModule, GAN, Trainer]:
    """The data module, model and trainer (with its callbacks and logger) that ``cfg`` describes."""
    check_config(cfg)
    quiet_lightning()
    hide_cuda_without_gpu(cfg)
    seed_everything(cfg.seed, workers=True, verbose=False)  # the seed is in the config: no line
    require_writable_folder("output folder", cfg.paths.output_dir)
    datamodule = _instantiate("data", cfg.data, LightningDataModule)
    datamodule.prepare_data()  # missing or corrupt data, or too large a batch, refused before Lightning says a word
    datamodule.setup("fit")
    check_fraction_of_batches(cfg, len(datamodule.train_set) // datamodule.batch_size)
    model = _instantiate("model", cfg.model, GAN)
    callbacks = [  # callbacks.NAME=null leaves one out
        _instantiate(f"callbacks.{name}", callback, Callback)
        for name, callback in cfg.callbacks.items()
        if callback is not None
    ] + list(extra_callbacks)
    for callback in callbacks:
        if isinstance(callback, ImageQuality) and callback.every_n_epochs:  # before the Trainer prints its setup
            callback.check_num_samples(len(datamodule.test_set))
    if not any(isinstance(callback, DivergenceCheck) for callback in callbacks):  # callbacks.loss_curve=null
        callbacks.insert(0, DivergenceCheck())  # first: an epoch's end checks the losses before the weights are used
    logger = False  # ~logger: no TensorBoard
    if cfg.get("logger"):
        logger = _instantiate("logger", cfg.logger, Logger)
        check_logger_settings(logger, cfg.logger)
    if logger:
        callbacks.append(LogConfig(OmegaConf.to_container(cfg, resolve=True)))
    checkpointing = {}
    no_checkpoints = not any(isinstance(callback, ModelCheckpoint) for callback in callbacks)  # checkpoint=null
    if no_checkpoints and "enable_checkpointing" not in cfg.trainer:
        checkpointing = {"enable_checkpointing": False}  # not Lightning's own, into the logger's folder
    trainer = _instantiate("trainer", cfg.trainer, Trainer, callbacks=callbacks, logger=logger, **checkpointing)
    return datamodule, model, trainer


OUTPUT_KEYS = (".output_dir", ".dirpath", ".save_dir")  # the settings of the folders that callbacks and loggers fill
OUTPUT_NAMES = (".name", ".version", ".sub_dir", ".filename")  # and of the names of what they write there (logger.name)


def check_output_folders(cfg: DictConfig, run_dir: Path) -> None:
    """Refuse a setting that sends any of the run's outputs outside its run folder (into another run's, say): the
    folder checked and claimed as the run starts. A name inside a folder must not leave it (no .., not absolute)."""
    settings = {"paths.output_dir": cfg.paths.output_dir}
    for group in ("callbacks", "logger"):
        config = OmegaConf.to_container(cfg.get(group) or OmegaConf.create(), resolve=True)
        flat = _flatten(config, f"{group}.")
        settings |= {key: value for key, value in flat.items() if key.endswith(OUTPUT_KEYS)}
        for key, name in ((key, Path(str(value))) for key, value in flat.items() if key.endswith(OUTPUT_NAMES)):
            if name.is_absolute() or ".." in name.parts:
                raise UserError(
                    f"{key}={str(name)!r}: a run writes only into its own run folder, here {run_dir}; give a name"
                    " without .. that is not an absolute path"
                )
    for key, folder in settings.items():
        if not Path(str(folder)).resolve().is_relative_to(run_dir.resolve()):
            raise UserError(
                f"{key}={folder!r}: a run writes only into its own run folder, here {run_dir};"
                " choose that folder with hydra.run.dir=FOLDER"
            )


def in_sweep() -> bool:
    """Whether this run is a job of a Hydra sweep (``-m``)."""
    return HydraConfig.get().mode == RunMode.MULTIRUN


def train(cfg: DictConfig) -> None:
    """Train the GAN that ``cfg`` describes; every output lands in Hydra's run folder. A new run refused (or crashed,
    or stopped) before training leaves nothing there (:func:`release_run_folder`); a sweep's job leaves its record,
    which the sweep's list of failed runs points to."""
    hydra_config = HydraConfig.get()
    run_dir = Path(hydra_config.runtime.output_dir)
    trainer = None
    try:
        with hold_run_folder(run_dir) if in_sweep() else contextlib.nullcontext():  # a run's: since on_run_start
            check_config(cfg)  # before check_output_folders reads them
            check_references(cfg)
            check_output_folders(cfg, run_dir)
            ckpt_path = resume_checkpoint(cfg)
            datamodule, model, trainer = build(cfg)
            fit(trainer, model, datamodule, ckpt_path)
    except (Exception, KeyboardInterrupt):  # a refusal, a crash, or Ctrl-C before Lightning handles it
        # epochs started, a checkpoint's included: a run from ckpt_path= refused after loading it keeps its folder
        started = trainer is not None and trainer.fit_loop.epoch_progress.total.started > 0
        if not (started or in_sweep() or _is_ddp_child(hydra_config)):
            if cfg.resume:  # the run's own record and outputs stay; this attempt's record goes
                shutil.rmtree(run_dir / hydra_config.output_subdir, ignore_errors=True)
            else:
                release_run_folder(run_dir, f"{hydra_config.job.name}.log")
        raise


def lock_run_folder(run_dir: Path) -> int:
    """Lock ``run_dir`` for this process, which trains there: a second process (a resume of a run still training) is
    refused. Returns the descriptor whose closing unlocks it; the system closes it when the process ends."""
    folder = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(folder)
        raise UserError(
            f"the run folder {run_dir} is in use: a run is training there; resume it once that run has ended"
            " (Ctrl-C stops it and saves where it stands)"
        ) from None
    return folder


@contextlib.contextmanager
def hold_run_folder(run_dir: Path) -> Iterator[None]:
    """Hold the lock of ``run_dir`` (:func:`lock_run_folder`) while the block runs: a sweep's job, in its folder."""
    folder = lock_run_folder(run_dir)
    try:
        yield
    finally:
        os.close(folder)


def fit(trainer: Trainer, model: GAN, datamodule: LightningDataModule, ckpt_path: str | None) -> None:
    """``trainer.fit``, with the exit status of a stopped run and a trainer setting refused in one line."""
    # our checkpoints hold configs and random states, which weights-only loading refuses; read_checkpoint checked it
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=False)
    except SIGTERMException as stop:  # Lightning's SystemExit with status 0; a killed run must not look successful
        raise SystemExit(128 + signal.SIGTERM) from stop
    except SystemExit as stop:  # after Ctrl-C Lightning exits with 1; 130 is the shell's status for SIGINT
        raise SystemExit(128 + signal.SIGINT if trainer.interrupted else stop.code) from stop
    except MisconfigurationException as error:  # Lightning refuses a trainer setting before training starts
        raise UserError(first_line(error)) from error
    except UserError:  # a diverged run: its error goes on a line of its own, after the progress bar's
        close_progress_bar(trainer)
        raise


def close_progress_bar(trainer: Trainer) -> None:
    """End the line of the training's progress bar, if it has one."""
    if isinstance(bar := trainer.progress_bar_callback, TQDMProgressBar):
        with contextlib.suppress(TypeError):  # no bar yet
            bar.train_progress_bar.close()


def register_resolvers() -> None:
    """The ``${gan_...:}`` resolvers the configs use; call before Hydra composes them."""
    OmegaConf.register_new_resolver("gan_mixed_precision", mixed_precision, replace=True)
    OmegaConf.register_new_resolver("gan_run_dir", run_dir, replace=True)
    OmegaConf.register_new_resolver("gan_record_dir", record_dir, replace=True)
