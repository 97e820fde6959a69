"""The latent-number study of ``analyze.py``: from a checkpoint to figures, ``metrics.json`` and the report."""

import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from hydra.experimental.callback import Callback as HydraCallback
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch.nn.modules.batchnorm import _BatchNorm
from torchmetrics.functional import pearson_corrcoef, spearman_corrcoef

from gan.callbacks import LossCurve
from gan.checkpoint import finite_generator, model_name, read_checkpoint, whole_epochs
from gan.classifier import CACHE_NAME, CLASS_NAMES, load_classifier
from gan.data import FashionMNISTDataModule
from gan.errors import (
    MAX_SEED,
    UserError,
    check_hydra_arguments,
    declared_settings,
    expand_home,
    outermost_missing,
    remove_made_folders,
    require_bool,
    require_declared,
    require_int,
    require_sections,
    require_writable_folder,
    section_settings,
)
from gan.figures import image_grid
from gan.latent import (
    MAX_LATENT_VALUE,
    MIN_CORRELATED,
    custom_noise,
    diversity,
    first_layer_weight,
    generate,
    image_change,
    load_noise,
    nearly_blank,
    random_directions,
    sefa_directions,
    sensitivity,
    set_direction,
    set_number,
)
from gan.report import write_report
from gan.training import CONF_DIR, is_training_run

MISSING_SETTING = "{0} is missing: a study needs this setting; leave out ~{0}"
SECTIONS = ("latent", "report", "classes")  # the sections of settings in conf/analyze.yaml
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}  # those that stop analyze.py: ignored while files move
STUDY_RECORD = ".study_files"  # in out_dir: the files the study there wrote, which the next study replaces
# the files a study writes, with its value_<value>.png figures
STUDY_FILES = (
    "base.png",
    "latent_grid.png",
    "traversal.png",
    "sefa.png",
    "loss_curve.png",
    "models.txt",
    "metrics.json",
    "report.md",
    "report.html",
)


@dataclass
class Study:
    """What the study measured (``metrics``, written to ``metrics.json``) and the images it drew."""

    metrics: dict[str, Any] = field(default_factory=dict)
    images: dict[str, list[torch.Tensor]] = field(default_factory=dict)


class NoRunDir(HydraCallback):
    """Refuses ``hydra.run.dir=`` and ``hydra.output_subdir=`` before Hydra makes those folders: analyze.py writes
    only to ``out_dir``."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.run.dir != ".":
            print(
                f"error: hydra.run.dir={config.hydra.run.dir}: analyze.py writes only to out_dir;"
                f" give out_dir={config.hydra.run.dir} instead",
                file=sys.stderr,
            )
            sys.exit(1)
        if config.hydra.output_subdir is not None:
            print(
                f"error: hydra.output_subdir={config.hydra.output_subdir}: analyze.py writes only to out_dir;"
                " leave hydra.output_subdir out",
                file=sys.stderr,
            )
            sys.exit(1)


class NoSweep(HydraCallback):
    """Refuses ``-m`` before Hydra writes anything: the studies of a sweep would share one ``out_dir``."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        print(
            "error: analyze.py makes one study per call (-m would write the studies over each other);"
            " run it once per checkpoint or setting, each with its own out_dir",
            file=sys.stderr,
        )
        sys.exit(1)


def latest_checkpoint() -> Path:
    """The newest ``checkpoints/last.ckpt`` of the runs under ``outputs/`` and ``multirun/`` here."""
    found = [path for top in ("outputs", "multirun") for path in Path(top).rglob("checkpoints/last.ckpt")]
    if not found:
        raise UserError("ckpt=latest: no run with checkpoints/last.ckpt under outputs/ or multirun/ in this folder")
    latest = max(found, key=lambda path: path.stat().st_mtime)
    print(f"ckpt=latest: {latest}")
    return latest


def resolve_checkpoint(ckpt: str) -> tuple[Path, Path]:
    """The ``.ckpt`` file and its run folder, given a ``.ckpt`` file, a run folder (or its ``checkpoints/``, or a
    folder holding a ``last.ckpt``) or ``latest``."""
    path = latest_checkpoint() if ckpt == "latest" else expand_home(str(ckpt), "ckpt")
    if path.is_dir():
        run_checkpoint = path / "checkpoints" / "last.ckpt"  # when missing, the path that "not found" names
        if path.name != "checkpoints" and (run_checkpoint.parent.is_dir() or not (path / "last.ckpt").is_file()):
            return run_checkpoint, path
        path = path / "last.ckpt"
    return path, path.parent.parent if path.parent.name == "checkpoints" else path.parent


def default_out_dir(ckpt_file: Path, run_dir: Path) -> Path:
    """``analysis/`` in the run folder for its ``last.ckpt``, ``analysis_<name>/`` for another of its checkpoints."""
    return run_dir / ("analysis" if ckpt_file.name == "last.ckpt" else f"analysis_{ckpt_file.stem}")


def _numbers(name: str, values: Any, example: str, integers: bool = False, most: float = math.inf) -> list:
    """``values`` as a non-empty list of finite numbers (integers if asked) of size at most ``most``, or a
    UserError naming ``name`` (and, for no list, a valid ``example``)."""
    kind = "integers" if integers else "numbers"
    if not isinstance(values, list | tuple | ListConfig) or len(values) == 0:
        raise UserError(f"{name} must be a non-empty list of {kind}, e.g. {name}={example}; got {values!r}")
    allowed = (int,) if integers else (int, float)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, allowed) or not math.isfinite(value):
            raise UserError(f"{name} must be a non-empty list of {kind}; {value!r} is not one")
        if abs(value) > most:
            raise UserError(f"{name}: {value!r} is outside [-{most:g}, {most:g}]")
    _refuse_repeats(name, list(values))
    return [value + 0 for value in values]  # -0.0 becomes 0.0, printed as 0


def _refuse_repeats(name: str, numbers: list) -> None:
    """A UserError naming the first number that ``numbers`` lists twice, as the figures and file names print it."""
    shown = [f"{number + 0:g}" for number in numbers]  # -0.0 and 0 are the same value
    for index, text in enumerate(shown):
        if text in shown[:index]:
            alike = "" if numbers[shown.index(text)] == numbers[index] else " (to 6 significant digits)"
            raise UserError(f"{name} lists {text} twice{alike}: {numbers}")


def check_latent_config(latent: DictConfig, latent_dim: int, num_sefa: int) -> dict[str, Any]:
    """The study's settings, checked against the model's latent size and its ``num_sefa`` SeFa directions."""
    example_dims = range(0, latent_dim, max(1, latent_dim // 5))[:3]  # [0,20,40] for the lab's 100 numbers
    dims = _numbers("latent.dims", latent.dims, f"[{','.join(map(str, example_dims))}]", integers=True)
    for dim in dims:
        if not 0 <= dim < latent_dim:
            raise UserError(f"latent.dims: {dim} is outside [0, {latent_dim}) (this model has {latent_dim} numbers)")
    values = _numbers("latent.values", latent["values"], "[1,10,100]", most=MAX_LATENT_VALUE)
    limits = {
        "num_images": (2, 64),
        # at least 20, for a 5th to 95th percentile; at most 1000 (each moves every noise vector once per value)
        "random_directions": (20, 1000),
        "sefa_directions": (1, num_sefa),
        "seed": (0, MAX_SEED),
    }
    for name, (least, most) in limits.items():
        require_int(f"latent.{name}", latent[name], least, most)
    return {
        "dims": dims,
        "values": values,
        "traversal": sorted(_numbers("latent.traversal", latent.traversal, "[-3,0,3]", most=MAX_LATENT_VALUE)),
        "sefa_directions": latent.sefa_directions,
    }


def choose_device(device: str) -> str:
    """``auto`` (a GPU when there is one), ``cpu`` or ``cuda``, checked against this machine."""
    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda needs an NVIDIA GPU, but torch.cuda.is_available() is False here; use device=cpu")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def value_figure(value: float) -> str:
    """The name (without .png) of the figure, and of its images in ``Study.images``, of one studied value."""
    return f"value_{value:g}"


def measure(
    generator: torch.nn.Module,
    noise: torch.Tensor,
    dims: list[int],
    values: list[float],
    traversal: list[float],
    num_random: int,
    num_sefa: int,
    seed: int,
    noise_source: str = "the custom noise",
) -> Study:
    """Run the whole study on ``generator`` (in eval mode) for the custom ``noise`` (from ``noise_source``)."""
    study = Study()
    base_images = generate(generator, noise)
    base_diversity = diversity(base_images)
    if base_diversity == 0:
        raise UserError(
            f"the {len(noise)} noise vectors ({noise_source}) all give the same image: the study needs different"
            " images to compare"
        )
    weight = first_layer_weight(generator)
    weight_norms = weight.norm(dim=0)
    typical_wz = float((noise @ weight.T).norm(dim=1).mean())
    study.images["base"] = [base_images]
    study.metrics.update(base_diversity=base_diversity, typical_wz_norm=typical_wz)
    study.metrics["study"] = _value_study(study, generator, noise, dims, values, weight_norms)

    directions = random_directions(num_random, noise.shape[1], seed + 1)
    number_sensitivity = sensitivity(generator, noise, torch.eye(noise.shape[1]))
    study.metrics["all_numbers"] = _all_numbers(generator, noise, directions, number_sensitivity, weight_norms)
    study.metrics["random_directions"] = _random_direction_study(
        generator, noise, base_images, base_diversity, directions, values
    )
    study.metrics["numbers"] = _traversal(study, generator, noise, base_diversity, dims, traversal)
    norm_order = torch.argsort(weight_norms, descending=True).tolist()
    sensitivity_order = torch.argsort(number_sensitivity, descending=True).tolist()
    for dim in dims:
        study.metrics["numbers"][str(dim)].update(
            weight_norm=float(weight_norms[dim]),
            weight_norm_rank=norm_order.index(dim) + 1,
            sensitivity=float(number_sensitivity[dim]),
            sensitivity_rank=sensitivity_order.index(dim) + 1,
        )
    study.metrics["sefa"] = _sefa(study, generator, noise, weight, traversal, num_sefa, number_sensitivity, dims)
    return study


def _value_study(
    study: Study,
    generator: torch.nn.Module,
    noise: torch.Tensor,
    dims: list[int],
    values: list[float],
    weight_norms: torch.Tensor,
) -> list[dict[str, float]]:
    """The lab's grid: each number in ``dims`` set to each of ``values``, its images drawn into ``study`` and
    measured against the base images (the first layer's ``weight_norms`` give each value's weight ratio)."""
    base_images, base_diversity = study.images["base"][0], study.metrics["base_diversity"]
    typical_wz = study.metrics["typical_wz_norm"]
    rows = []
    for value in values:
        study.images[value_figure(value)] = []
        for dim in dims:
            images = generate(generator, set_number(noise, dim, value))
            study.images[value_figure(value)].append(images)
            change, row_diversity = float(image_change(images, base_images).mean()), diversity(images)
            rows.append(
                {
                    "value": value,
                    "dim": dim,
                    "change": change,
                    "change_vs_base_diversity": change / base_diversity,
                    "diversity": row_diversity,
                    "diversity_ratio": row_diversity / base_diversity,
                    "weight_ratio": abs(value) * float(weight_norms[dim]) / typical_wz,
                    "blank_images": int(nearly_blank(images).sum()),
                }
            )
    return rows


def _all_numbers(
    generator: torch.nn.Module,
    noise: torch.Tensor,
    directions: torch.Tensor,
    number_sensitivity: torch.Tensor,
    weight_norms: torch.Tensor,
) -> dict[str, Any]:
    """How strongly each of the latent numbers moves the images, beside its weight norm and random ``directions``."""
    random_sensitivity = sensitivity(generator, noise, directions)
    measurable = len(weight_norms) >= MIN_CORRELATED  # else the correlation is null
    return {
        "sensitivity": number_sensitivity.tolist(),
        "weight_norm": weight_norms.tolist(),
        "spearman_sensitivity_vs_weight_norm": (
            float(spearman_corrcoef(number_sensitivity, weight_norms)) if measurable else None
        ),
        "random_sensitivity": random_sensitivity.tolist(),
        "random_sensitivity_p5": float(random_sensitivity.quantile(0.05)),
        "random_sensitivity_p95": float(random_sensitivity.quantile(0.95)),
    }


def _random_direction_study(
    generator: torch.nn.Module,
    noise: torch.Tensor,
    base_images: torch.Tensor,
    base_diversity: float,
    directions: torch.Tensor,
    values: list,
) -> list[dict[str, float]]:
    """The null baseline: the same change of value along random unit directions instead of single numbers."""
    results = []
    for value in values:
        moved = torch.cat([set_direction(noise, direction, value) for direction in directions])
        images = generate(generator, moved).view(len(directions), len(noise), 1, 28, 28)
        changes = torch.stack([image_change(row, base_images).mean() for row in images])
        ratios = torch.tensor([diversity(row) / base_diversity for row in images])
        results.append(
            {
                "value": value,
                "change_mean": float(changes.mean()),
                "change_p5": float(changes.quantile(0.05)),
                "change_p95": float(changes.quantile(0.95)),
                "diversity_ratio_mean": float(ratios.mean()),
                "diversity_ratio_p5": float(ratios.quantile(0.05)),
                "diversity_ratio_p95": float(ratios.quantile(0.95)),
            }
        )
    return results


def _traversal(
    study: Study,
    generator: torch.nn.Module,
    noise: torch.Tensor,
    base_diversity: float,
    dims: list,
    traversal: list,
) -> dict[str, dict]:
    """Each chosen number swept over ``traversal``, its change measured from the images with the number at 0 (not
    the noise's own value), so that the onset is a size of the number; the figure shows the first noise vector."""
    numbers, study.images["traversal"] = {}, []
    for dim in dims:
        sweep = generate(generator, torch.cat([set_number(noise, dim, value) for value in traversal]))
        sweep = sweep.view(len(traversal), len(noise), 1, 28, 28)
        study.images["traversal"].append(sweep[:, 0])
        at_zero = generate(generator, set_number(noise, dim, 0.0))
        relative = [float(image_change(images, at_zero).mean()) / base_diversity for images in sweep]
        numbers[str(dim)] = {"traversal_values": traversal, "traversal_change_from_0_vs_base_diversity": relative}
    return numbers


def _sefa(
    study: Study,
    generator: torch.nn.Module,
    noise: torch.Tensor,
    weight: torch.Tensor,
    traversal: list,
    count: int,
    number_sensitivity: torch.Tensor,
    dims: list,
) -> dict[str, Any]:
    """SeFa's principal directions of the first layer, their traversal, and how much they explain (the R² of the
    columns' sizes null for fewer than ``MIN_CORRELATED`` numbers)."""
    directions, singular_values = sefa_directions(weight)
    top = directions[:count]
    study.images["sefa"] = [
        generate(generator, torch.cat([set_direction(noise[:1], direction, value) for value in traversal]))
        for direction in top
    ]
    column_energy = weight.pow(2).sum(0)
    top_energy = (singular_values[:count, None] * top).pow(2).sum(0)  # part of each column in the top directions
    share = top_energy / column_energy
    return {
        "count": count,
        "singular_values": singular_values.tolist(),
        "energy_share": float(singular_values[:count].pow(2).sum() / singular_values.pow(2).sum()),
        "column_share_mean": float(share.mean()),
        "column_share": {str(dim): float(share[dim]) for dim in dims},
        "column_energy_r2": (
            float(pearson_corrcoef(column_energy, top_energy) ** 2) if len(column_energy) >= MIN_CORRELATED else None
        ),
        "sensitivity": sensitivity(generator, noise, top).tolist(),
        "max_number_sensitivity": float(number_sensitivity.max()),
    }


def _recorded(record: Path, key: str) -> str | None:
    """The setting ``key`` in Hydra's record file ``record``; None when it is not a path there (or no file)."""
    try:
        value = OmegaConf.select(OmegaConf.load(record), key)
    except Exception:  # noqa: BLE001 - no record, or one unreadable or unresolvable: the setting is unknown
        return None
    return value if isinstance(value, str) and value.strip() else None


def run_data_root(run_dir: Path) -> tuple[str | None, Path | None]:
    """The ``data.root`` in the first record of the run (``.hydra/config.yaml``; resumed runs add others) and that
    folder here, if it is: a relative one from the folder that training ran in, else from the current folder; one
    that holds the data or the classifier first."""
    recorded = _recorded(run_dir / ".hydra" / "config.yaml", "data.root")
    if recorded is None:
        return None, None
    root = expand_home(recorded, "the run's data.root")
    training_dir = _recorded(run_dir / ".hydra" / "hydra.yaml", "hydra.runtime.cwd")
    candidates = [root] if training_dir is None else [Path(training_dir) / root, root]  # the same when absolute
    holding_data = [path for path in candidates if (path / "FashionMNIST").is_dir() or (path / CACHE_NAME).is_file()]
    return recorded, next((path for path in [*holding_data, *candidates] if path.is_dir()), None)


def class_data_root(data_root: str | None, run_dir: Path) -> str:
    """``classes.data_root`` if given, else the run's ``data.root`` where that folder is here, else training's default
    (``data``); says which when it is not the one given."""
    if data_root is not None:
        return data_root
    default = declared_settings(CONF_DIR / "data" / "fashion_mnist.yaml").root
    recorded, found = run_data_root(run_dir)
    if found is not None:
        print(f"class column: the data and classifier in {found}, the run's data.root (classes.data_root=PATH: others)")
        return str(found)
    if recorded is not None:
        print(f"class column: the run's data.root, {recorded}, is not here; the data and classifier in {default}")
    return default


def _file_state(path: Path) -> tuple[int, int] | None:
    """The inode and modification time of the file ``path``, None when there is none: tells whether it was written."""
    return (path.stat().st_ino, path.stat().st_mtime_ns) if path.is_file() else None


def add_classes(study: Study, settings: dict[str, Any], data_root: str, system_dir: str) -> None:
    """The classifier's class for every studied image, and how many images of each row changed class (nearly blank
    ones are no class change); the time of a one-off training of the classifier goes to ``classifier_seconds``.

    Without the data to train the classifier on, the class column is left out, with the reason in metrics.json.
    """
    datamodule = FashionMNISTDataModule(
        root=data_root, system_dir=system_dir, download=False, root_option="classes.data_root"
    )
    study.metrics["classes_data_root"] = str(datamodule.root)
    cache, started = datamodule.root / CACHE_NAME, time.perf_counter()
    cached = _file_state(cache)
    try:
        classifier = load_classifier(datamodule)
    except UserError as error:
        print(f"class column left out: {error}")
        study.metrics["classes_left_out"] = str(error)
        return
    if _file_state(cache) != cached:  # trained (and cached) now
        study.metrics["classifier_seconds"] = round(time.perf_counter() - started, 2)
    base_classes = classifier.predict(study.images["base"][0])
    study.metrics["base_classes"] = [CLASS_NAMES[index] for index in base_classes]
    for row in study.metrics["study"]:
        images = study.images[value_figure(row["value"])][settings["dims"].index(row["dim"])]
        row_classes = classifier.predict(images)
        row["classes"] = [CLASS_NAMES[index] for index in row_classes]
        row["class_changes"] = int(((row_classes != base_classes) & ~nearly_blank(images)).sum())


def write_figures(study: Study, settings: dict[str, Any], out_dir: Path) -> list[str]:
    """The PNG figures of the study; returns their file names."""
    dims, values, traversal = settings["dims"], settings["values"], settings["traversal"]
    columns = [f"image {index}" for index in range(len(study.images["base"][0]))]
    written = ["base.png"]
    image_grid(study.images["base"], ["custom noise"], columns, "The custom noise", out_dir / "base.png")
    all_rows, all_labels = list(study.images["base"]), ["custom noise"]
    for value in values:
        labels = [f"z[{dim}] = {value:g}" for dim in dims]
        rows = study.images[value_figure(value)]
        image_grid(rows, labels, columns, f"One number set to {value:g}", out_dir / f"{value_figure(value)}.png")
        written.append(f"{value_figure(value)}.png")
        all_rows += rows
        all_labels += labels
    image_grid(all_rows, all_labels, columns, "The custom noise and every change", out_dir / "latent_grid.png")
    steps = [f"{value:g}" for value in traversal]
    image_grid(
        study.images["traversal"], [f"z[{dim}]" for dim in dims], steps, "Each number set to the value above (image 0)",
        out_dir / "traversal.png",
    )  # fmt: skip
    image_grid(
        study.images["sefa"], [f"SeFa direction {index}" for index in range(len(study.images["sefa"]))], steps,
        "The component along each SeFa direction set to the value above (image 0)", out_dir / "sefa.png",
    )  # fmt: skip
    return [*written, "latent_grid.png", "traversal.png", "sefa.png"]


def loss_history(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The loss history that the run's ``LossCurve`` saved in the checkpoint, or None (none, or still empty)."""
    history = next(
        (state for key, state in checkpoint.get("callbacks", {}).items() if key.startswith("LossCurve")), None
    )
    return history if history is not None and history["d_losses"] else None


def write_run_artefacts(checkpoint: dict[str, Any], out_dir: Path) -> tuple[str, bool]:
    """``models.txt`` (print(G), print(D)) and, from the checkpoint's history, ``loss_curve.png``."""
    hparams = checkpoint["hyper_parameters"]
    models_text = f"{instantiate(hparams['generator'])}\n{instantiate(hparams['discriminator'])}\n"
    (out_dir / "models.txt").write_text(models_text)
    if (history := loss_history(checkpoint)) is None:
        return models_text, False
    curve = LossCurve(str(out_dir))
    curve.load_state_dict(history)
    curve.plot()
    return models_text, True


def check_command_line(arguments: list[str]) -> None:
    """Refuse in one line, before Hydra answers in several: ``~ckpt`` and the other settings whose default is null
    (Hydra: they do not exist), ``KEY=~/...``, a misspelt setting and ``hydra.sweeper.params``."""
    check_hydra_arguments(arguments, CONF_DIR, "analyze", MISSING_SETTING.format, "analyze.py makes one study per call")


def check_sections(cfg: DictConfig) -> None:
    """Refuse a setting removed (``~ckpt``, ``~latent``) or a section of settings replaced by a value (``latent=5``,
    ``report=null``)."""
    declared = declared_settings(CONF_DIR / "analyze.yaml")

    def refusal(name: str) -> str:
        if name not in SECTIONS:
            return MISSING_SETTING.format(name)
        settings = section_settings(CONF_DIR / "analyze.yaml", name)
        if name not in cfg:
            return f"{name} is missing: it is a section of settings ({settings}); leave out ~{name}"
        return f"{name} must be a section of settings ({settings}), got {cfg[name]!r}"

    require_sections(cfg, CONF_DIR / "analyze.yaml", refusal, SECTIONS)
    for section in SECTIONS:
        if missing := [key for key in declared[section] if key not in cfg[section]]:
            raise UserError(MISSING_SETTING.format(f"{section}.{missing[0]}"))


def check_options(cfg: DictConfig) -> None:
    """Refuse a section replaced or removed, a misspelt setting, a bad ``report.lang``, ``classes`` setting, ``ckpt``,
    ``out_dir`` or ``latent.noise_file`` before anything is read."""
    check_sections(cfg)
    require_declared(cfg, CONF_DIR / "analyze.yaml", SECTIONS)
    if cfg.report.lang not in ("en", "zh"):
        raise UserError(f"report.lang must be en or zh, got {cfg.report.lang!r}")
    if require_bool("classes.enabled", cfg.classes.enabled):
        for name in ("data_root", "system_dir"):
            value = cfg.classes[name]
            if name == "data_root" and value is None:  # the run's data.root, else data
                continue
            if not isinstance(value, str) or not value.strip():
                raise UserError(f"classes.{name} must be a folder path, got {value!r}")
        data_root = cfg.classes.data_root
        if data_root is not None and not expand_home(data_root, "classes.data_root").is_dir():
            raise UserError(  # a typo would copy the data there and train a classifier for minutes
                f"classes.data_root {data_root} is not a folder here; give the folder of the data and the cached"
                " classifier (the run's data.root), or leave it out for that"
            )
    if cfg.ckpt is None or not str(cfg.ckpt).strip():
        given = "not given" if cfg.ckpt is None else f"empty ({cfg.ckpt!r})"
        raise UserError(f"ckpt is {given}: give a run folder, a .ckpt file (ckpt=PATH) or ckpt=latest")
    optional_paths = {
        "out_dir": "a folder (out_dir=PATH), or leave it out for analysis/ in the run folder",
        "latent.noise_file": "a .pt or .npy file (latent.noise_file=PATH), or leave it out for the seed's noise",
    }
    for name, allowed in optional_paths.items():
        value = OmegaConf.select(cfg, name)
        is_path = isinstance(value, str | int) and not isinstance(value, bool)  # out_dir=777: a folder named 777
        if value is not None and (not is_path or not str(value).strip()):
            given = f"empty ({value!r})" if isinstance(value, str) else f"not a path ({value!r})"
            raise UserError(f"{name} is {given}: give {allowed}")


def study_noise(latent: DictConfig, latent_dim: int) -> torch.Tensor:
    """The custom noise: ``latent.noise_file``'s vectors, else ``latent.num_images`` drawn from ``latent.seed``."""
    if latent.noise_file:
        return load_noise(latent.noise_file, latent.num_images, latent_dim)
    return custom_noise(latent.num_images, latent_dim, latent.seed)


def choose_out_dir(out_dir: str | None, ckpt_file: Path, run_dir: Path) -> Path:
    """``out_dir``, else the default beside the checkpoint; never a training run's folder."""
    default = default_out_dir(ckpt_file, run_dir)
    chosen = expand_home(out_dir, "out_dir") if out_dir else default
    if is_training_run(chosen):
        raise UserError(
            f"out_dir {chosen} is a training run's folder, whose loss_curve.png and models.txt the study would"
            f" replace; give a folder of its own (default: {default})"
        )
    return chosen


@contextmanager
def writable_out_dir(out_dir: Path) -> Iterator[Path]:
    """``out_dir``, made writable; the folders made for it are removed again, if empty, when the study stops."""
    made = outermost_missing(out_dir)
    try:
        yield require_writable_folder("out_dir", out_dir)
    except BaseException:
        remove_made_folders(out_dir, made)  # those the study wrote in, or someone else did, stay
        raise


def study_file_names(values: list[float], has_loss_curve: bool) -> list[str]:
    """The names of the files a study of ``values`` writes (``loss_curve.png`` only from a checkpoint's history)."""
    names = [name for name in STUDY_FILES if has_loss_curve or name != "loss_curve.png"]
    return names + [f"{value_figure(value)}.png" for value in values]


def _is_study_file_name(name: str) -> bool:
    """Whether a study could have written a file of this name (``STUDY_FILES``, ``value_<value>.png``)."""
    return name in STUDY_FILES or name.startswith("value_") and name.endswith(".png") and _is_value_figure(name[:-4])


def previous_study_files(out_dir: Path, names: list[str]) -> list[Path]:
    """The files that the previous study wrote in ``out_dir`` (named in its ``STUDY_RECORD``), and the record; refuses
    a file this study would write over (one of ``names``) that no study wrote, or a folder or link in the way of one."""
    record = out_dir / STUDY_RECORD
    if in_the_way := [
        name for name in [STUDY_RECORD, *names] if (out_dir / name).is_dir() or (out_dir / name).is_symlink()
    ]:  # a study writes plain files: it would write through a link, to a file elsewhere
        raise UserError(
            f"out_dir {out_dir} holds {', '.join(in_the_way)}, a folder or symbolic link where the study writes a"
            " file of that name; choose another out_dir, or move it"
        )
    written = {name for name in record.read_text().split() if _is_study_file_name(name)} if record.is_file() else set()
    if foreign := [name for name in names if (out_dir / name).is_file() and name not in written]:
        raise UserError(
            f"out_dir {out_dir} holds {', '.join(foreign)}, which this study would write over, but no {STUDY_RECORD}"
            " there names them as a study's (your own files, or a study of an earlier version of analyze.py);"
            " choose another out_dir, or move them"
        )
    previous = sorted(out_dir / name for name in written if (out_dir / name).is_file())
    return previous + ([record] if record.is_file() else [])


def _is_value_figure(stem: str) -> bool:
    """Whether ``stem`` is the name that :func:`value_figure` gives a finite value."""
    try:
        value = float(stem.removeprefix("value_"))
    except ValueError:
        return False
    return math.isfinite(value) and value_figure(value) == stem


def replace_previous_study(out_dir: Path, files: list[Path]) -> None:
    """Remove the previous study's ``files`` (:func:`previous_study_files`) from ``out_dir``, saying so."""
    if study_files := [path for path in files if path.name != STUDY_RECORD]:
        print(f"replacing the previous study in {out_dir} ({len(study_files)} files; other files there stay)")
    for path in files:
        path.unlink(missing_ok=True)


@contextmanager
def signals_ignored() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP are ignored while the block (milliseconds of file moves) runs."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread sets signal handlers
        yield
        return
    handlers = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def analyze(cfg: DictConfig) -> Path:
    """Run the study that ``cfg`` (``conf/analyze.yaml``) describes; return the output folder."""
    started = time.perf_counter()
    check_options(cfg)
    device = choose_device(cfg.device)
    ckpt_file, run_dir = resolve_checkpoint(cfg.ckpt)
    checkpoint = read_checkpoint(ckpt_file)
    generator = finite_generator(checkpoint, ckpt_file, device)
    weight = first_layer_weight(generator)
    latent_dim = weight.shape[1]
    settings = check_latent_config(cfg.latent, latent_dim, min(weight.shape))  # one SeFa direction per singular value
    noise = study_noise(cfg.latent, latent_dim)
    noise_file, seed = cfg.latent.noise_file, cfg.latent.seed
    noise_source = f"latent.noise_file {noise_file}" if noise_file else f"latent.seed={seed}"
    with writable_out_dir(choose_out_dir(cfg.out_dir, ckpt_file, run_dir)) as out_dir:
        names = study_file_names(settings["values"], loss_history(checkpoint) is not None)
        previous_study = previous_study_files(out_dir, names)  # the user's own files there refused before the work
        study = measure(
            generator, noise, settings["dims"], settings["values"], settings["traversal"],
            cfg.latent.random_directions, settings["sefa_directions"], cfg.latent.seed, noise_source,
        )  # fmt: skip
        if cfg.classes.enabled:
            add_classes(study, settings, class_data_root(cfg.classes.data_root, run_dir), cfg.classes.system_dir)
        study.metrics.update(
            checkpoint=str(ckpt_file),
            model=model_name(checkpoint["hyper_parameters"]["generator"]["_target_"]),
            epochs_trained=whole_epochs(checkpoint),
            batches_trained=checkpoint["global_step"] // 2,  # two optimiser steps per batch
            latent_dim=latent_dim,
            has_batchnorm=any(isinstance(module, _BatchNorm) for module in generator.modules()),
            noise=str(noise_file) if noise_file else f"seed {seed}",
            num_images=len(noise),
            dims=settings["dims"],
            values=settings["values"],
            device=device,
        )
        # written beside out_dir's files first: a study that fails or is stopped leaves the previous one as it was
        with tempfile.TemporaryDirectory(prefix=".study-", dir=out_dir) as staging:
            figures = write_figures(study, settings, Path(staging))
            models_text, has_loss_curve = write_run_artefacts(checkpoint, Path(staging))
            # without a one-off training of the classifier (its classifier_seconds)
            seconds = time.perf_counter() - started - study.metrics.get("classifier_seconds", 0)
            study.metrics["seconds"] = round(seconds, 2)
            (Path(staging) / "metrics.json").write_text(json.dumps(study.metrics, indent=2))
            write_report(study.metrics, models_text, figures, has_loss_curve, cfg.report.lang, Path(staging))
            with signals_ignored():  # out_dir holds one whole study, the previous or this one, never half of each
                replace_previous_study(out_dir, previous_study)
                (out_dir / STUDY_RECORD).write_text("".join(f"{name}\n" for name in names))  # before its files
                for name in names:
                    os.replace(Path(staging) / name, out_dir / name)
    return out_dir
