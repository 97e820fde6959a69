"""analyze.py: the measurements on a generator with known answers, the figures, the report, bad input."""

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image
from torch import nn

import gan
from gan import classifier
from gan.analysis import (
    STUDY_RECORD,
    Study,
    add_classes,
    analyze,
    check_command_line,
    check_latent_config,
    class_data_root,
    measure,
    resolve_checkpoint,
)
from gan.errors import UserError
from gan.figures import TILE_PX
from gan.latent import (
    MIN_CORRELATED,
    diversity,
    first_layer_weight,
    generate,
    load_noise,
    nearly_blank,
    set_number,
)
from gan.report import TEXT, _rows, build_report
from tests.conftest import ROOT, SYSTEM_DIR, run_script, tiny_train_args, write_fake_fmnist

SCALES = [1.0, 2.0, 3.0, 4.0]  # latent number i moves pixel block i by SCALES[i] per unit


class BlockGenerator(nn.Module):
    """A linear generator with known answers: number i drives only the i-th quarter of the pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 784, bias=False)
        weight = torch.zeros(784, 4)
        for index, scale in enumerate(SCALES):
            weight[index * 196 : (index + 1) * 196, index] = scale
        self.fc1.weight.data = weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc1(z).view(-1, 1, 28, 28)


@pytest.fixture(scope="module")
def block_study():
    noise = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    study = measure(BlockGenerator(), noise, dims=[0, 3], values=[1.0, 10.0], traversal=[-1.0, 0.0, 1.0],
                    num_random=20, num_sefa=1, seed=0)  # fmt: skip
    return noise, study.metrics


def study_of(generator: nn.Module, dims: list[int], values: list[float]) -> Study:
    """A study of ``generator`` on 6 noise vectors, with what analyze() adds to its metrics, from which the report
    is written."""
    latent_dim = first_layer_weight(generator).shape[1]
    noise = torch.randn(6, latent_dim, generator=torch.Generator().manual_seed(0))
    traversal = [-1.0, 0.0, 1.0]
    study = measure(generator, noise, dims, values, traversal, num_random=20, num_sefa=1, seed=0)
    study.metrics.update(
        checkpoint="last.ckpt", model="mlp", epochs_trained=1, batches_trained=3, latent_dim=latent_dim,
        has_batchnorm=False, noise="seed 0", num_images=6, dims=dims, values=values, device="cpu", seconds=0.1,
    )  # fmt: skip
    return study


def block_metrics(dims: list[int], values: list[float], generator: nn.Module | None = None) -> dict:
    """The metrics of a study of ``generator``, by default BlockGenerator."""
    return study_of(generator or BlockGenerator(), dims, values).metrics


def test_setting_a_number_changes_exactly_that_input() -> None:
    noise = torch.randn(8, 100)
    changed = set_number(noise, 40, 100.0)
    assert torch.all(changed[:, 40] == 100.0)
    others = [index for index in range(100) if index != 40]
    assert torch.equal(changed[:, others], noise[:, others])
    assert not torch.equal(noise[:, 40], changed[:, 40])  # the input itself is untouched


def test_change_and_weight_ratio_match_the_known_answer(block_study) -> None:
    noise, metrics = block_study
    for row in metrics["study"]:
        dim, value = row["dim"], row["value"]
        # a quarter of the pixels move by scale * |value - z|, halved for the [0, 1] grey scale
        expected = float((value - noise[:, dim]).abs().mean()) * SCALES[dim] / 4 / 2
        assert row["change"] == pytest.approx(expected, rel=1e-5)
        typical = float((noise @ BlockGenerator().fc1.weight.T).norm(dim=1).mean())
        assert row["weight_ratio"] == pytest.approx(abs(value) * SCALES[dim] * 14 / typical, rel=1e-5)


def test_sensitivity_and_its_rank_correlation(block_study) -> None:
    _, metrics = block_study
    numbers = metrics["all_numbers"]
    assert numbers["sensitivity"] == pytest.approx([scale / 8 for scale in SCALES], rel=1e-5)
    assert numbers["weight_norm"] == pytest.approx([scale * 14 for scale in SCALES], rel=1e-5)
    assert numbers["spearman_sensitivity_vs_weight_norm"] == pytest.approx(1.0)
    assert metrics["numbers"]["3"]["weight_norm_rank"] == 1 and metrics["numbers"]["0"]["sensitivity_rank"] == 4


def test_one_number_that_drives_every_pixel_collapses_the_row() -> None:
    generator = BlockGenerator()
    generator.fc1.weight.data[:, 1:] = 0
    generator.fc1.weight.data[:, 0] = 1
    noise = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    metrics = measure(generator, noise, [0, 2], [10.0], [0.0], num_random=5, num_sefa=1, seed=0).metrics
    by_dim = {row["dim"]: row for row in metrics["study"]}
    assert by_dim[0]["diversity"] == pytest.approx(0.0, abs=1e-6)  # every image is the same now
    assert by_dim[2]["diversity_ratio"] == pytest.approx(1.0) and by_dim[2]["change"] == 0.0


def test_traversal_change_is_measured_from_zero_whatever_the_noise_holds() -> None:
    noise = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    noise[:, 0] = 3.0  # a noise file whose z[0] is 3: at 3 the images are the base images
    traversal = [-1.0, 0.0, 1.0, 3.0]
    metrics = measure(BlockGenerator(), noise, [0], [1.0], traversal, num_random=5, num_sefa=1, seed=0).metrics
    # a quarter of the pixels move by SCALES[0] * |value| from their value at 0, halved for the [0, 1] grey scale
    expected = [abs(value) * SCALES[0] / 4 / 2 / metrics["base_diversity"] for value in traversal]
    assert metrics["numbers"]["0"]["traversal_change_from_0_vs_base_diversity"] == pytest.approx(expected, rel=1e-5)


def test_sefa_finds_the_strongest_direction(block_study) -> None:
    _, metrics = block_study
    sefa = metrics["sefa"]
    assert sefa["singular_values"] == pytest.approx([56.0, 42.0, 28.0, 14.0], rel=1e-5)
    assert sefa["energy_share"] == pytest.approx(16 / 30, rel=1e-5)
    assert sefa["column_share"]["3"] == pytest.approx(1.0, abs=1e-5)
    assert sefa["column_share"]["0"] == pytest.approx(0.0, abs=1e-5)
    assert sefa["sensitivity"][0] == pytest.approx(4 / 8, rel=1e-4)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MLP run of train.py on synthetic data."""
    from tests.conftest import write_fake_fmnist

    tmp = tmp_path_factory.mktemp("analyze")
    write_fake_fmnist(tmp / "data" / "FashionMNIST" / "raw")
    result = run_script(*tiny_train_args(tmp / "data", tmp / "run"), "trainer.max_epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp / "run"


def compose_analyze(*overrides: str):
    """The analyze config, without the class column (its classifier has a test of its own)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        defaults = [] if any(item.startswith("classes.enabled") for item in overrides) else ["classes.enabled=false"]
        return compose(config_name="analyze", overrides=[*defaults, *overrides])


def test_analyze_run_folder_writes_figures_metrics_and_report(trained_run: Path) -> None:
    keep = trained_run / "analysis" / "my_notes.txt"
    keep.parent.mkdir(exist_ok=True)
    keep.write_text("mine")
    result = run_script(
        str(ROOT / "analyze.py"), f"ckpt={trained_run}", "latent.values=[1,10,100]",
        f"classes.data_root={trained_run.parent / 'data'}", "classes.system_dir=/nonexistent",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = trained_run / "analysis"
    assert keep.read_text() == "mine"  # files of the user's are never deleted
    names = ["base", "value_1", "value_10", "value_100", "latent_grid", "traversal", "sefa", "loss_curve"]
    sizes = {name: Image.open(out / f"{name}.png").size for name in names}
    base_width, base_height = sizes["base"]
    for name in ("value_1", "value_10", "value_100"):
        assert sizes[name] == (base_width, base_height + 4 * TILE_PX)  # 5 rows of 8 tiles
    assert sizes["latent_grid"] == (base_width, base_height + 15 * TILE_PX)  # the base row and 15 more
    assert sizes["traversal"][0] == base_width + 3 * TILE_PX  # 11 traversal values
    assert (out / "models.txt").read_text().startswith("Generator(\n  (fc1)")

    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["study"]) == 15 and len(metrics["all_numbers"]["sensitivity"]) == 100
    report = (out / "report.md").read_text()
    assert len(metrics["base_classes"]) == 8
    for row in metrics["study"]:
        assert f"| {row['value']:g} | z[{row['dim']}] | {row['change']:.4f} |" in report
        assert len(row["classes"]) == 8 and 0 <= row["class_changes"] <= 8
        assert f"| {row['class_changes']} / 8 |" in report
    changed_at_100 = sum(row["class_changes"] for row in metrics["study"] if row["value"] == 100)
    assert f"{changed_at_100} of the 40 images are now of another class" in report
    rho = metrics["all_numbers"]["spearman_sensitivity_vs_weight_norm"]
    assert f"ρ = {rho:.2f}" in report
    assert f"{metrics['sefa']['energy_share']:.0%} of its energy" in report
    assert "eval mode" in report and "![value_100.png](value_100.png)" in report
    assert "trained 1 whole epoch, 3 batches" in report  # 96 images in batches of 32
    assert "<table>" in (out / "report.html").read_text()


def test_report_text_follows_the_numbers(trained_run: Path, tmp_path: Path) -> None:
    out_dirs = []
    for values in ("[1]", "[100]"):
        out_dir = tmp_path / values.strip("[]")
        analyze(compose_analyze(f"ckpt={trained_run}", f"latent.values={values}", f"out_dir={out_dir}"))
        out_dirs.append(out_dir)
    small, large = ((out_dir / "report.md").read_text() for out_dir in out_dirs)
    summary = re.compile(r"## Summary\n\n(.*)", re.S)
    assert summary.search(small).group(1) != summary.search(large).group(1)
    assert "outweighs the other 99" in large and "outweighs" not in small


def test_report_names_the_studied_counts(trained_run: Path, tmp_path: Path) -> None:
    overrides = ["latent.values=[2,5]", "latent.dims=[3]", "latent.num_images=4", f"out_dir={tmp_path}"]
    analyze(compose_analyze(f"ckpt={trained_run}", *overrides))
    report = (tmp_path / "report.md").read_text()
    assert "## The custom noise: 4 images" in report and "## Changing one number: the 2x4 images" in report
    assert "8 images" not in report and "15x8" not in report and "from number to number" not in report
    assert "for z[3] to" not in report  # no range of one number


def test_report_names_the_rows_that_collapse() -> None:
    text = TEXT["en"]
    assert _rows([0.1, 0.9, 0.2], [0, 20, 40], 8, text) == (
        "in the row of z[20] the 8 images stay about as different from each other as before;"
        " in the rows of z[0], z[40] they collapse to nearly the same image"
    )
    assert _rows([0.1, 0.2], [0, 20], 8, text) == text["rows_collapsed_all"]


@pytest.mark.parametrize(
    ("ratios", "lang", "wording"),
    [
        ([1.11, 1.13], "en", "the 8 images become more different from each other than before"),  # not "as before"
        ([1.11, 1.13], "zh", "8 张图之间的差异比原来更大"),
        ([0.9, 1.0, 1.094], "en", "the 8 images stay about as different from each other as before"),  # 109%
        ([0.894, 1.0], "zh", "在 z[20] 所在的行中,8 张图之间的差异与原来大致相同;在 z[0] 所在的行中,它们变得更相似"),
        ([1.2, 0.5], "en", "in the row of z[0] the 8 images become more different from each other than before;"
                           " in the row of z[20] they become more alike"),
    ],
)  # fmt: skip
def test_report_says_whether_rows_grow_more_or_less_diverse(ratios: list[float], lang: str, wording: str) -> None:
    assert _rows(ratios, [0, 20, 40][: len(ratios)], 8, TEXT[lang]) == wording


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_words_follow_the_measured_ratios_and_print_them_on_their_side(lang: str) -> None:
    metrics = block_metrics([0, 1], [1.0])
    # the audit's MLP: z[0] at 1 changes the images by 9.58% of the base diversity, which whole percent shows as 10%
    metrics["study"][0].update(change_vs_base_diversity=0.0958, diversity_ratio=0.2496)  # 24.96%: collapsed
    metrics["study"][1].update(change_vs_base_diversity=0.05, diversity_ratio=1.0)
    metrics["numbers"]["0"]["traversal_change_from_0_vs_base_diversity"] = [0.0958, 0.0, 0.0958]
    metrics["all_numbers"]["spearman_sensitivity_vs_weight_norm"] = 0.6951  # printed 0.70 (strong)
    report, text = build_report(metrics, "", [], False, lang), TEXT[lang]
    assert "| 1 | z[0] |" in report and "| 9.6% | 24.96% |" in report and "| 5% | 100% |" in report
    assert text["effect_none"] in report and text["effect_mixed"].split("(")[0] not in report  # as the traversal
    assert text["onset_never"].format(value=1) in report and "9.6% (1)" in report
    assert text["rows_collapsed"].format(images="") in report and text["collapse_at"].format(values=1) in report
    assert "ρ = 0.70:" in report and text["rho_strong"] in report
    metrics["study"][0]["change_vs_base_diversity"] = 0.1  # 10% is visible
    assert "| 10% |" in build_report(metrics, "", [], False, lang)
    assert text["effect_mixed"].format(visible="z[0]") in build_report(metrics, "", [], False, lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_says_so_when_no_single_number_changes_the_images(lang: str) -> None:
    metrics = block_metrics([0], [1.0])
    metrics["sefa"]["max_number_sensitivity"] = 0.0  # noise of huge numbers saturates the generator
    assert TEXT[lang]["sefa_against_none"] in build_report(metrics, "", [], False, lang)


@pytest.mark.parametrize(
    ("rho", "key"), [(-1.0, "rho_negative"), (-0.296, "rho_negative"), (-0.294, "rho_weak"), (0.0, "rho_weak")]
)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_words_a_negative_correlation_as_the_opposite(rho: float, key: str, lang: str) -> None:
    metrics = block_metrics([0], [1.0])
    metrics["all_numbers"]["spearman_sensitivity_vs_weight_norm"] = rho  # -0.296 is printed -0.30
    text = TEXT[lang]
    assert text["correlation"].format(rho=round(rho, 2) + 0, rho_text=text[key]) in build_report(
        metrics, "", [], False, lang
    )


@pytest.mark.parametrize("latent_dim", [1, 2])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_too_few_numbers_have_no_correlation(latent_dim: int, lang: str) -> None:
    generator = nn.Sequential(nn.Linear(latent_dim, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torchmetrics warns of a correlation of one number
        metrics = block_metrics([0], [1.0], generator)
    assert metrics["all_numbers"]["spearman_sensitivity_vs_weight_norm"] is None
    assert metrics["sefa"]["column_energy_r2"] is None
    report = build_report(metrics, "", [], False, lang)
    text = TEXT[lang]
    assert re.search(r"\bnan\b", report) is None and "ρ =" not in report and "R² =" not in report
    assert text["correlation_none"].format(least=MIN_CORRELATED) in report
    assert text["sefa_r2_none"].format(least=MIN_CORRELATED) in report
    assert (text["h_all_one"] in report) == (latent_dim == 1)  # not "All 1 numbers"


SWEEP = [-10.0, -3.0, -1.0, 0.0, 1.0, 3.0, 10.0]


@pytest.mark.parametrize(
    ("values", "changes", "wording"),
    [
        (SWEEP, [0.5, 0.2, 0.0, 0.0, 0.0, 0.2, 0.5], "visible once \\|z[0]\\| reaches 3."),
        (SWEEP, [0.5, 0.0, 0.0, 0.0, 0.0, 0.2, 0.5], "visible once \\|z[0]\\| reaches 10."),  # not at -3: not from 3
        (SWEEP, [0.5, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0], "visible only at z[0] = -10, -3."),  # never on the + side
        (SWEEP, [0.0] * 7, "visible nowhere within ±10."),
        # one side measured: the measured values, never |z[0]| or ±
        ([5.0], [0.5], "visible at z[0] = 5."),
        ([1.0, 3.0, 10.0], [0.05, 0.2, 0.5], "visible only at z[0] = 3, 10."),
        ([-10.0, 0.0, 3.0, 10.0], [0.5, 0.0, 0.2, 0.5], "visible at z[0] = -10, 3, 10."),  # -3 not measured
        ([0.0, 5.0], [0.0, 0.0], "visible at none of the measured values, z[0] = 0, 5."),
    ],
)
def test_report_says_where_the_traversal_is_visible(values: list[float], changes: list[float], wording: str) -> None:
    metrics = block_metrics([0], [1.0])
    number = metrics["numbers"]["0"]
    number["traversal_values"] = values
    number["traversal_change_from_0_vs_base_diversity"] = changes
    assert wording in build_report(metrics, "", [], False, "en")


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize(
    ("changes", "band", "key"),
    [
        ((0.007, 0.012), (0.006, 0.013), "effect_visible_alike_random"),  # the audit's conv model at value 1
        ((0.007, 0.012), (0.001, 0.002), "effect_visible_alike"),
        ((0.006, 0.012), (0.001, 0.002), "effect_visible_differ"),  # twice the smallest, as printed
        ((0.006, 0.012), (0.005, 0.013), "effect_visible_differ_random"),
    ],
)
def test_visible_changes_differ_from_number_to_number_only_as_measured(
    changes: tuple[float, float], band: tuple[float, float], key: str, lang: str
) -> None:
    metrics = block_metrics([0, 1], [1.0])
    for row, change in zip(metrics["study"], changes, strict=True):
        row.update(change=change, change_vs_base_diversity=change * 20)  # 12% to 24%: visible, not large
    metrics["random_directions"][0].update(change_p5=band[0], change_p95=band[1])
    text = TEXT[lang]
    summary_start = text["summary_value"].split("{rows}")[0].format(value=1, effect=text[key])
    assert summary_start in build_report(metrics, "", [], False, lang)


def test_report_of_one_sefa_direction_is_singular() -> None:
    report = build_report(block_metrics([0], [1.0]), "", [], False, "en")  # block_metrics studies 1 SeFa direction
    assert "The top singular direction of the first layer's weight carries" in report
    assert "lies in this direction" in report and "The top SeFa direction swept the same way:" in report
    assert "top 1 " not in report and "these 1 " not in report
    zh_report = build_report(block_metrics([0], [1.0]), "", [], False, "zh")
    assert "第一层权重的第一个奇异方向" in zh_report and "第一个 SeFa 方向" in zh_report and "前 1 个" not in zh_report


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ((0.060, 0.100), "versus_inside"),
        ((0.039, 0.040), "versus_below"),
        ((0.039, 0.160), "versus_mixed"),
    ],
)
def test_report_names_numbers_outside_the_random_directions(changes: tuple[float, float], key: str, lang: str) -> None:
    metrics = block_metrics([0, 1], [1.0])
    for row, change in zip(metrics["study"], changes, strict=True):
        row["change"] = change
    metrics["random_directions"][0].update(change_p5=0.051, change_p95=0.152)
    assert TEXT[lang][key] in build_report(metrics, "", [], False, lang)


@pytest.mark.parametrize(
    ("changes", "lang", "wording"),
    [
        # the audit's z[23] at value 6, under the band 0.051 to 0.152
        ((0.039, 0.060), "en", "z[0] changes the images less than most random directions, the others like any random"
                               " direction"),
        ((0.060, 0.160), "en", "z[1] changes the images more than most random directions, the others like any random"
                               " direction"),
        ((0.160, 0.060, 0.170, 0.100), "en", "z[0], z[2] change the images more than most random directions, the"
                                             " others like any random direction"),
        ((0.060, 0.160), "zh", "z[1] 引起的变化大于大多数随机方向,其余与任意随机方向表现相同"),
        ((0.039, 0.060, 0.040, 0.100), "zh", "z[0], z[2] 引起的变化小于大多数随机方向,其余与任意随机方向表现相同"),
    ],
)  # fmt: skip
def test_report_names_the_few_numbers_outside_the_random_directions(
    changes: tuple[float, ...], lang: str, wording: str
) -> None:
    metrics = block_metrics(list(range(len(changes))), [1.0])
    for row, change in zip(metrics["study"], changes, strict=True):
        row["change"] = change
    metrics["random_directions"][0].update(change_p5=0.051, change_p95=0.152)
    assert wording in build_report(metrics, "", [], False, lang)


def test_report_compares_with_random_directions_as_printed() -> None:
    metrics = block_metrics([0], [1.0])
    metrics["study"][0]["change"] = 0.1004  # printed 0.100, as the random directions' 95th percentile
    metrics["random_directions"][0].update(change_p5=0.05, change_p95=0.1001)
    report = build_report(metrics, "", [], False, "en")
    assert "(5th to 95th percentile 0.050 to 0.100); the chosen number behaves like any random direction" in report


SAME_ENDS = re.compile(r"(?<![\d.])(\d[\d.]*%?) (?:to|到) \1(?![\d.])")  # "0.19 to 0.19", "99% 到 99%"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_of_one_number_gives_no_ranges_and_speaks_of_one(lang: str) -> None:
    report = build_report(block_metrics([1], [2.5]), "", [], False, lang)
    assert SAME_ENDS.search(report) is None
    singular = {"en": ["Studied number [1], set to 2.5.", "The row keeps", "The chosen number swept"],
                "zh": ["研究的随机数为 [1],设为 2.5。", "该行保留了", "所选随机数取遍"]}  # fmt: skip
    plural = {"en": ["chosen numbers", "The rows keep", "each set to"], "zh": ["各行保留了", "每个分别", "每个所选"]}
    assert all(words in report for words in singular[lang]) and not any(words in report for words in plural[lang])


def test_report_gives_one_value_where_the_ends_of_a_range_print_alike() -> None:
    metrics = block_metrics([0, 1], [1.0])
    metrics["study"][0].update(change=0.1001, weight_ratio=0.101, diversity_ratio=0.996)
    metrics["study"][1].update(change=0.1004, weight_ratio=0.099, diversity_ratio=1.004)  # each prints as the other
    report = build_report(metrics, "", [], False, "en")
    assert SAME_ENDS.search(report) is None and "(from 0.100 for" not in report
    assert "is 0.10 times a typical" in report and "The rows keep 100% of" in report


@pytest.mark.parametrize(("changed", "effect"), [(0, "large, yet every image keeps its class"),
                                                 (1, "large: the garments themselves change"),
                                                 (3, "large: the garments themselves change")])  # fmt: skip
def test_a_large_change_changes_the_garments_only_if_the_classes_say_so(changed: int, effect: str) -> None:
    metrics = block_metrics([0, 1], [10.0])
    metrics["base_classes"] = ["Bag"] * 6
    for row, row_changed in zip(metrics["study"], [changed, 0], strict=True):
        row.update(change_vs_base_diversity=0.6, classes=["Bag"] * 6, class_changes=row_changed)
    report = build_report(metrics, "", [], False, "en")
    verb = "is" if changed == 1 else "are"
    assert f"- **10**: {effect};" in report and f"{changed} of the 12 images {verb} now of another class" in report


def test_study_of_another_checkpoint_gets_its_own_folder_and_leaves_other_files(trained_run: Path) -> None:
    (trained_run / "analysis_epoch_000").mkdir(exist_ok=True)
    (trained_run / "analysis_epoch_000" / ".write_test").write_text("mine")
    analyze(compose_analyze(f"ckpt={trained_run / 'checkpoints' / 'epoch_000.ckpt'}", "out_dir=null"))
    assert (trained_run / "analysis_epoch_000" / "report.md").is_file()
    assert (trained_run / "analysis_epoch_000" / ".write_test").read_text() == "mine"


@pytest.mark.parametrize("name", ["report.md", "models.txt", "loss_curve.png", "value_5.png"])
def test_the_users_own_file_named_as_a_studys_is_refused_and_kept(name: str, trained_run: Path, tmp_path: Path) -> None:
    (tmp_path / name).write_text("mine")
    (tmp_path / "value_7.png").write_text("mine")  # a name that this study (of value 5) does not write: no matter
    message = f"out_dir {tmp_path} holds {name}, which this study would write over, but no .study_files there names"
    with pytest.raises(UserError, match=re.escape(message)):
        analyze(compose_analyze(f"ckpt={trained_run}", f"out_dir={tmp_path}", "latent.values=[5]"))
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([name, "value_7.png"])
    assert (tmp_path / name).read_text() == "mine"


@pytest.mark.parametrize("kind", ["folder", "dangling link"])
@pytest.mark.parametrize("name", [".study_files", "report.md"])
def test_a_folder_or_link_where_a_study_writes_a_file_is_refused(
    name: str, kind: str, trained_run: Path, tmp_path: Path
) -> None:
    out_dir, elsewhere = tmp_path / "out", tmp_path / "elsewhere.txt"
    out_dir.mkdir()
    if kind == "folder":
        (out_dir / name).mkdir()
    else:
        (out_dir / name).symlink_to(elsewhere)  # the study would have written through it, to elsewhere.txt
    message = f"out_dir {out_dir} holds {name}, a folder or symbolic link where the study writes a file"
    with pytest.raises(UserError, match=re.escape(message)):
        analyze(compose_analyze(f"ckpt={trained_run}", f"out_dir={out_dir}"))
    assert [path.name for path in out_dir.iterdir()] == [name] and not elsewhere.exists()


def test_a_new_study_replaces_the_previous_ones_files(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = ["latent.dims=[0]", "latent.num_images=2", "latent.random_directions=20", f"out_dir={tmp_path}"]
    analyze(compose_analyze(f"ckpt={trained_run}", "latent.values=[1,10,100]", *small))
    first = {path.name for path in tmp_path.iterdir()}
    assert first - {STUDY_RECORD} <= set((tmp_path / STUDY_RECORD).read_text().split())  # names all it wrote
    mine = ["notes.txt", "value_mine.png", "value_nan.png"]  # the user's, not a study's
    for name in mine:
        (tmp_path / name).write_text("mine")
    capsys.readouterr()
    analyze(compose_analyze(f"ckpt={trained_run}", "latent.values=[5]", *small))
    assert capsys.readouterr().out == f"replacing the previous study in {tmp_path} (12 files; other files there stay)\n"
    second = first - {"value_1.png", "value_10.png", "value_100.png"} | {"value_5.png"}
    assert {path.name for path in tmp_path.iterdir()} == second | set(mine)
    assert all((tmp_path / name).read_text() == "mine" for name in mine)

    np.save(tmp_path / "same.npy", np.ones((2, 100)))
    with pytest.raises(UserError, match="all give the same image"):  # refused: nothing replaced
        analyze(compose_analyze(f"ckpt={trained_run}", f"latent.noise_file={tmp_path / 'same.npy'}", *small))
    assert {path.name for path in tmp_path.iterdir()} == second | set(mine) | {"same.npy"}


def test_a_study_that_fails_while_writing_leaves_the_previous_one(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = ["latent.dims=[0]", "latent.num_images=2", "latent.random_directions=20", f"out_dir={tmp_path}"]
    analyze(compose_analyze(f"ckpt={trained_run}", "latent.values=[1]", *small))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("crash while writing the report")

    monkeypatch.setattr("gan.analysis.write_report", crash)
    with pytest.raises(RuntimeError, match="crash while writing the report"):
        analyze(compose_analyze(f"ckpt={trained_run}", "latent.values=[5]", *small))
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before  # no hidden folder left either


def test_report_in_chinese(trained_run: Path, tmp_path: Path) -> None:
    analyze(compose_analyze(f"ckpt={trained_run}", "report.lang=zh", f"out_dir={tmp_path}"))
    assert "## 各随机数的效果" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_a_noise_file_of_another_byte_order_or_a_sparse_tensor_is_read(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).normal(size=(8, 100)).astype(np.float32)
    np.save(tmp_path / "big_endian.npy", noise.astype(">f4"))  # as saved on a big-endian machine
    torch.save(torch.from_numpy(noise).to_sparse(), tmp_path / "sparse.pt")
    for name in ("big_endian.npy", "sparse.pt"):
        assert torch.equal(load_noise(tmp_path / name, 8, 100), torch.from_numpy(noise))


def test_a_noise_file_that_is_a_fifo_or_a_folder_is_named_as_such(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.npy")  # reading it would wait for a writer
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(UserError, match=re.escape(f"latent.noise_file {tmp_path / 'fifo.npy'} is not a file; give")):
        load_noise(tmp_path / "fifo.npy", 8, 100)
    with pytest.raises(UserError, match=re.escape(f"latent.noise_file {tmp_path / 'folder.pt'} is a folder; give")):
        load_noise(tmp_path / "folder.pt", 8, 100)


def test_custom_noise_file_is_used(trained_run: Path, tmp_path: Path) -> None:
    noise = np.random.default_rng(5).normal(size=(8, 100)).astype(np.float32)
    np.save(tmp_path / "noise.npy", noise)
    analyze(
        compose_analyze(f"ckpt={trained_run}", f"latent.noise_file={tmp_path / 'noise.npy'}", f"out_dir={tmp_path}")
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    generator = gan.load_generator(trained_run / "checkpoints" / "last.ckpt")
    assert metrics["noise"] == str(tmp_path / "noise.npy")
    assert metrics["base_diversity"] == pytest.approx(diversity(generate(generator, torch.from_numpy(noise))))


BAD_INPUTS = [
    ("ckpt={run}/nothing.ckpt", "checkpoint not found"),
    ("ckpt={corrupt}", "corrupt or unreadable checkpoint"),
    ("ckpt=", "ckpt is empty (''): give a run folder, a .ckpt file (ckpt=PATH) or ckpt=latest"),
    ("ckpt=' '", "ckpt is empty (' '): give a run folder"),
    ("ckpt=null", "ckpt is not given: give a run folder"),
    ("latent.dims=[0,100]", "latent.dims: 100 is outside [0, 100)"),
    ("latent.dims=[-1]", "latent.dims: -1 is outside [0, 100)"),
    ("latent.dims=[10000000]", "latent.dims: 10000000 is outside [0, 100)"),
    ("latent.values=[]", "latent.values must be a non-empty list"),
    ("latent.dims=[]", "latent.dims must be a non-empty list of integers, e.g. latent.dims=[0,20,40]; got []"),
    ("latent.values=[1,ten]", "'ten' is not one"),
    ("latent.values=abc", "latent.values must be a non-empty list"),
    ("latent.noise_file={wrong_shape}", "has shape (8, 50), expected (8, 100)"),
    ("latent.noise_file={same}", "the 8 noise vectors (latent.noise_file {same}) all give the same image"),
    ("report.lang=fr", "report.lang must be en or zh"),
    ("latent.values=[10,10]", "latent.values lists 10 twice"),
    ("latent.dims=[0,20,0]", "latent.dims lists 0 twice: [0, 20, 0]"),
    ("latent.values=[0,-0.0]", "latent.values lists 0 twice: [0, -0.0]"),
    ("latent.traversal=[5,1,1,-3]", "latent.traversal lists 1 twice: [5, 1, 1, -3]"),
    ("classes.enabled=abc", "classes.enabled must be true or false, got 'abc'"),
    ("latent.values=[1,1.0000001]", "latent.values lists 1 twice (to 6 significant digits): [1, 1.0000001]"),
    ("latent.seed=abc", "latent.seed must be an integer from 0 to 4294967295, got 'abc'"),
    ("latent.seed=99999999999999999999", "latent.seed must be an integer from 0 to 4294967295"),
    ("latent.num_images=1", "latent.num_images must be an integer from 2 to 64, got 1"),
    ("latent.num_images=100000", "latent.num_images must be an integer from 2 to 64, got 100000"),
    ("latent.sefa_directions=1000", "latent.sefa_directions must be an integer from 1 to 100, got 1000"),
    ("latent.random_directions=1000000", "latent.random_directions must be an integer from 20 to 1000, got 1000000"),
    ("latent.random_directions=1", "latent.random_directions must be an integer from 20 to 1000, got 1"),
    ("latent.values=[1e39]", "latent.values: 1e+39 is outside [-1e+06, 1e+06]"),
    ("latent.traversal=[-1e7,0]", "latent.traversal: -10000000.0 is outside [-1e+06, 1e+06]"),
    ("ckpt={bare}", "checkpoint not found: {bare}/checkpoints/last.ckpt"),  # not {bare}/last.ckpt
    ("latent.noise_file=", "latent.noise_file is empty (''): give a .pt or .npy file (latent.noise_file=PATH)"),
    ("latent.noise_file=' '", "latent.noise_file is empty (' '): give a .pt or .npy file"),
    ("latent.noise_file=true", "latent.noise_file is not a path (True): give a .pt or .npy file"),
    ("latent.noise_file=5", "latent.noise_file must be a .pt or .npy file, got 5"),  # the number 5: a file named 5
    ("latent.noise_file={missing_npy}", "latent.noise_file not found: {missing_npy}"),
    ("out_dir=", "out_dir is empty (''): give a folder (out_dir=PATH), or leave it out for analysis/ in the run"),
    ("out_dir={run}", "is a training run's folder, whose loss_curve.png and models.txt the study would replace"),
    ("latent.noise_file={text_pt}", "it must hold one array of real numbers, saved with torch.save (.pt)"),
    ("latent.noise_file={complex_pt}", "holds torch.complex64 values; it must hold real numbers"),
    ("latent.noise_file={huge}", "holds 1,000,001; its numbers must be within ±1,000,000, like latent.values"),
    ("latent.noise_file={meta_pt}", "cannot read latent.noise_file {meta_pt} (Cannot copy out of meta tensor"),
    ("ckpt={no_loops}", "{no_loops} is a damaged checkpoint of this project: its 'loops' entry is missing or"),
    ("device=tpu", "device must be auto, cpu or cuda, got 'tpu'"),
    ("+latent.value=[5]", "latent.value is no setting (a typo?); the settings here: dims, noise_file, num_images"),
    ("+outdir=x", "outdir is no setting (a typo?); the settings here: ckpt, classes, device, latent, out_dir, report"),
    ("ckpt={diverged}", "the generator in {diverged} holds NaN or infinite weights (the run diverged); use an"
                        " earlier checkpoint of the run"),
    ("latent=5", "latent must be a section of settings (latent.dims=..., latent.values=..., latent.seed=...,"),
    ("report=null", "report must be a section of settings (report.lang=...), got None"),
    ("classes=null", "classes must be a section of settings (classes.enabled=..., classes.data_root=..., "
                     "classes.system_dir=...), got None"),
    ("classes=5", "classes must be a section of settings (classes.enabled=..., classes.data_root=..."),
    ("~latent", "latent is missing: it is a section of settings (latent.dims=..., latent.values=..., latent.seed="),
    ("~ckpt", "ckpt is missing: a study needs this setting; leave out ~ckpt"),
    ("~out_dir", "out_dir is missing: a study needs this setting; leave out ~out_dir"),
    ("~device", "device is missing: a study needs this setting; leave out ~device"),
    ("~classes.enabled", "classes.enabled is missing: a study needs this setting; leave out ~classes.enabled"),
    ("~latent.dims", "latent.dims is missing: a study needs this setting; leave out ~latent.dims"),
]  # fmt: skip


def diverged_checkpoint(run: Path, path: Path) -> Path:
    """A copy of ``run``'s last checkpoint whose generator (its moving average too, if any) holds a NaN weight."""
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    for key, tensor in checkpoint["state_dict"].items():
        if key.startswith("generator") and key.endswith("fc2.bias"):
            tensor[0] = float("nan")
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize(("override", "message"), BAD_INPUTS)
def test_bad_input_is_refused_with_one_line(override: str, message: str, trained_run: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"not a checkpoint" * 10)
    np.save(tmp_path / "wrong.npy", np.zeros((8, 50)))
    np.save(tmp_path / "same.npy", np.ones((8, 100)))
    (tmp_path / "text.pt").write_text("not a tensor")
    torch.save(torch.zeros(8, 100, dtype=torch.complex64), tmp_path / "complex.pt")
    np.save(tmp_path / "huge.npy", np.full((8, 100), 1e6 + 1))
    torch.save(torch.empty(8, 100, device="meta"), tmp_path / "meta.pt")
    checkpoint = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=False)
    del checkpoint["loops"]
    torch.save(checkpoint, tmp_path / "no_loops.ckpt")
    (tmp_path / "bare").mkdir()  # a folder with neither checkpoints/ nor last.ckpt
    paths = dict(
        run=trained_run, corrupt=corrupt, wrong_shape=tmp_path / "wrong.npy", same=tmp_path / "same.npy",
        text_pt=tmp_path / "text.pt", complex_pt=tmp_path / "complex.pt", bare=tmp_path / "bare",
        missing_npy=tmp_path / "missing.npy", diverged=diverged_checkpoint(trained_run, tmp_path / "diverged.ckpt"),
        huge=tmp_path / "huge.npy", meta_pt=tmp_path / "meta.pt", no_loops=tmp_path / "no_loops.ckpt",
    )  # fmt: skip
    override, message = override.format(**paths), message.format(**paths)
    overrides = [f"ckpt={trained_run}", f"out_dir={tmp_path / 'out' / 'deep'}", override]
    with pytest.raises(UserError, match=re.escape(message)) as error:
        analyze(compose_analyze(*overrides))
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists()  # a refused study leaves no folder of its own, even one it made


@pytest.mark.parametrize("latent_dim", [1, 3, 16, 100])
def test_the_example_for_empty_dims_is_accepted(latent_dim: int) -> None:
    latent = compose_analyze("latent.dims=[]", "latent.sefa_directions=1").latent
    with pytest.raises(UserError, match="e.g. latent.dims=") as error:
        check_latent_config(latent, latent_dim, latent_dim)
    latent.dims = json.loads(re.search(r"latent\.dims=(\[[0-9,]+\])", str(error.value)).group(1))
    assert check_latent_config(latent, latent_dim, latent_dim)["dims"] == list(latent.dims)


@pytest.mark.parametrize("setting", ["ckpt", "out_dir", "latent.noise_file", "classes.data_root"])
def test_removing_a_setting_whose_default_is_null_is_refused_in_one_line(setting: str) -> None:
    result = run_script(str(ROOT / "analyze.py"), f"~{setting}")  # Hydra: "Could not delete ... does not exist"
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {setting} is missing: a study needs this setting; leave out ~{setting}"


def test_bad_input_exits_non_zero_without_traceback(trained_run: Path) -> None:
    result = run_script(str(ROOT / "analyze.py"), f"ckpt={trained_run}", "latent.dims=[0,250]")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: latent.dims: 250 is outside [0, 100) (this model has 100 numbers)"


def test_a_sweep_is_refused_before_anything_is_written(trained_run: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "analyze.py"), "-m", f"ckpt={trained_run}", "report.lang=en,zh"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: analyze.py makes one study per call")
    assert list(tmp_path.iterdir()) == []


def test_sweeper_params_a_home_shorthand_and_a_misspelt_setting_are_refused_in_one_line() -> None:
    with pytest.raises(UserError, match=r"^hydra.sweeper.params=\{a:1\}: Hydra cannot take hydra.sweeper.params on"):
        check_command_line(["ckpt=x", "hydra.sweeper.params={a:1}"])
    with pytest.raises(UserError, match="^ckpt=~/run: Hydra cannot read a value that starts with ~; give the whole"):
        check_command_line(["ckpt=~/run"])
    with pytest.raises(UserError, match="^latent.values=\\[1, ~/x\\]: Hydra cannot read a value that starts with ~"):
        check_command_line(["ckpt=x", "latent.values=[1, ~/x]"])  # an item of a list (or of a sweep)
    with pytest.raises(UserError, match=re.escape("latent.dim=[1]: latent.dim is no setting (a typo?); the settings")):
        check_command_line(["ckpt=x", "latent.dim=[1]"])
    check_command_line(["ckpt=x", "latent.dims=[1]"])  # no typo: no complaint


def test_a_hydra_run_dir_is_refused_before_hydra_makes_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "x"
    result = run_script(str(ROOT / "analyze.py"), "ckpt=x", f"hydra.run.dir={run_dir}")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: hydra.run.dir={run_dir}: analyze.py writes only to out_dir; give out_dir={run_dir} instead"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("subdir", "shown"), [("x", "x"), ("''", ""), ("{tmp}/x", "{tmp}/x")])
def test_a_hydra_output_subdir_is_refused_before_hydra_makes_it(subdir: str, shown: str, tmp_path: Path) -> None:
    subdir, shown = subdir.format(tmp=tmp_path), shown.format(tmp=tmp_path)
    result = run_script(str(ROOT / "analyze.py"), "ckpt=x", f"hydra.output_subdir={subdir}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: hydra.output_subdir={shown}: analyze.py writes only to out_dir; leave hydra.output_subdir out"
    )
    assert list(tmp_path.iterdir()) == []  # no record folder, here (the run folder) or elsewhere


@pytest.mark.parametrize(("value", "shown"), [("5", "5"), ("''", "''")])  # null: the run's data.root
def test_class_data_folder_must_be_a_path(value: str, shown: str, trained_run: Path, tmp_path: Path) -> None:
    overrides = ["classes.enabled=true", f"classes.data_root={value}", f"out_dir={tmp_path}"]
    with pytest.raises(UserError, match=re.escape(f"classes.data_root must be a folder path, got {shown}")):
        analyze(compose_analyze(f"ckpt={trained_run}", *overrides))


@pytest.mark.parametrize("marker", [".hydra", "samples", "tensorboard"])
def test_a_run_folder_without_checkpoints_is_refused_as_out_dir(marker: str, trained_run: Path, tmp_path: Path) -> None:
    run_without_checkpoints = tmp_path / "run"  # e.g. trained with callbacks.checkpoint=null
    (run_without_checkpoints / marker).mkdir(parents=True)
    (run_without_checkpoints / "loss_curve.png").write_bytes(b"the run's own curve")
    with pytest.raises(UserError, match="is a training run's folder"):
        analyze(compose_analyze(f"ckpt={trained_run}", f"out_dir={run_without_checkpoints}"))
    assert (run_without_checkpoints / "loss_curve.png").read_bytes() == b"the run's own curve"


def run_interrupted(owner_import: str, target: str) -> subprocess.CompletedProcess:
    """analyze.py as a script, with ``target`` (imported by ``owner_import``) replaced by one that raises
    KeyboardInterrupt."""
    code = (
        f"import runpy, sys\n{owner_import}\ndef interrupted(*args, **kwargs):\n    raise KeyboardInterrupt\n"
        f"{target} = interrupted\nsys.argv = ['analyze.py', 'ckpt=x']\n"
        "runpy.run_path('analyze.py', run_name='__main__')"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ctrl_c_stops_with_one_line() -> None:
    result = run_interrupted("import gan.analysis", "gan.analysis.analyze")  # the study is interrupted
    assert result.returncode == 130
    assert result.stderr.strip() == "interrupted: out_dir keeps the previous study"


def study_signalled(trained_run: Path, out_dir: Path, target: str, signum: int) -> subprocess.CompletedProcess:
    """analyze.py as a script, whose ``target`` in gan.analysis (at work on the study) first receives ``signum``."""
    code = (
        "import os, runpy, signal, sys\nimport gan.analysis\n"
        f"original = gan.analysis.{target}\n"
        f"def signalled(*args, **kwargs):\n    os.kill(os.getpid(), {int(signum)})\n"
        "    return original(*args, **kwargs)\n"
        f"gan.analysis.{target} = signalled\n"
        f"sys.argv = ['analyze.py', 'ckpt={trained_run}', 'out_dir={out_dir}', 'classes.enabled=false',"
        " 'latent.dims=[0]', 'latent.num_images=2', 'latent.random_directions=20']\n"
        "runpy.run_path('analyze.py', run_name='__main__')"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)


def test_sigterm_stops_a_study_as_ctrl_c_does_and_the_file_moves_finish(trained_run: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "study"
    analyze(compose_analyze(f"ckpt={trained_run}", f"out_dir={out_dir}", "latent.values=[7]"))
    before = {path.name: path.read_bytes() for path in out_dir.iterdir()}
    result = study_signalled(trained_run, out_dir, "write_report", signal.SIGTERM)  # kill, timeout
    assert result.returncode == 128 + signal.SIGTERM, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == "interrupted: out_dir keeps the previous study"
    assert {path.name: path.read_bytes() for path in out_dir.iterdir()} == before  # no hidden folder left
    result = study_signalled(trained_run, out_dir, "replace_previous_study", signal.SIGINT)  # as the files move
    assert result.returncode == 0 and "value_1.png" in {path.name for path in out_dir.iterdir()}
    assert "value_7.png" not in {path.name for path in out_dir.iterdir()}  # the whole new study, none of the old


def test_ctrl_c_while_hydra_composes_the_settings_exits_quietly() -> None:
    result = run_interrupted("from hydra._internal.hydra import Hydra", "Hydra.compose_config")
    assert result.returncode == 130
    assert result.stderr == ""


def test_ckpt_latest_finds_the_newest_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="ckpt=latest: no run"):
        resolve_checkpoint("latest")
    runs = ["outputs/2026-11-26/10-00-00", "outputs/mine", "multirun/sweep/0", "multirun/2026-11-26/09-00-00/1"]
    for index, run in enumerate(runs):  # Hydra's date folders, or any (hydra.run.dir=outputs/mine)
        ckpt = tmp_path / run / "checkpoints" / "last.ckpt"
        ckpt.parent.mkdir(parents=True)
        ckpt.write_bytes(b"")
        os.utime(ckpt, (1000 + index, 1000 + index))
    assert resolve_checkpoint("latest") == (
        Path("multirun/2026-11-26/09-00-00/1/checkpoints/last.ckpt"),
        Path("multirun/2026-11-26/09-00-00/1"),
    )
    assert (
        capsys.readouterr().out.splitlines()[-1] == "ckpt=latest: multirun/2026-11-26/09-00-00/1/checkpoints/last.ckpt"
    )
    os.utime(tmp_path / "outputs/mine/checkpoints/last.ckpt", (2000, 2000))
    assert resolve_checkpoint("latest")[1] == Path("outputs/mine")


def test_a_class_data_folder_that_is_not_there_is_refused(trained_run: Path, tmp_path: Path) -> None:
    overrides = [f"ckpt={trained_run}", f"out_dir={tmp_path / 'out'}", "classes.enabled=true"]
    with pytest.raises(UserError, match=re.escape(f"classes.data_root {tmp_path}/typo is not a folder here; give")):
        analyze(compose_analyze(*overrides, f"classes.data_root={tmp_path}/typo"))
    assert list(tmp_path.iterdir()) == []  # nothing copied there, no classifier trained


def test_class_column_is_left_out_without_data(trained_run: Path, tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    analyze(compose_analyze(
        f"ckpt={trained_run}", f"out_dir={tmp_path}", "classes.enabled=true",
        f"classes.data_root={tmp_path / 'nothing'}", "classes.system_dir=/nonexistent",
    ))  # fmt: skip
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert "Fashion-MNIST not found" in metrics["classes_left_out"] and "base_classes" not in metrics
    assert "changed class" not in (tmp_path / "report.md").read_text()


def test_class_column_left_out_names_the_setting_of_its_data_folder(trained_run: Path, tmp_path: Path) -> None:
    raw_files = trained_run.parent / "data" / "FashionMNIST" / "raw"  # the data's files, found as in Debian's folder
    analyze(compose_analyze(
        f"ckpt={trained_run}", f"out_dir={tmp_path / 'study'}", "classes.enabled=true",
        "classes.data_root=/proc", f"classes.system_dir={raw_files}",  # a folder, where nothing can be made
    ))  # fmt: skip
    reason = json.loads((tmp_path / "study" / "metrics.json").read_text())["classes_left_out"]
    assert reason.startswith("cannot create") and reason.endswith("set classes.data_root to a writable folder")


def write_run_record(run_dir: Path, data_root: str, training_dir: Path | None = None) -> Path:
    """A run folder holding only Hydra's record: ``data.root`` and, if given, the folder that training ran in."""
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(f"data:\n  root: {data_root}\n")
    if training_dir is not None:
        (run_dir / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  runtime:\n    cwd: {training_dir}\n")
    return run_dir


@pytest.mark.parametrize(
    ("given", "recorded", "where", "used"),
    [
        (None, "{tmp}/fm", "", "{tmp}/fm"),  # the audit's run: trained with data.root=/tmp/fm
        ("{tmp}/mine", "{tmp}/fm", "", "{tmp}/mine"),  # given: used as it is
        (None, "{tmp}/gone", "", "data"),  # not here: training's default
        (None, "fm", "", "fm"),  # relative: from the current folder, as training took it
        (None, "fm", "training", "{tmp}/training/fm"),  # else from the folder that training ran in
        (None, "fm", "both", "{tmp}/training/fm"),  # both: the one with the data, although one is here
        (None, None, "", "data"),  # no record
    ],
)
def test_the_class_data_root_is_the_runs_where_it_is_here(
    given: str | None, recorded: str | None, where: str, used: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, run_dir = tmp_path / "here", tmp_path / "run"
    for folder in (here, tmp_path / "fm", tmp_path / "training" / "fm"):
        folder.mkdir(parents=True)
    if where != "training":
        (here / "fm").mkdir()  # else only where training ran
    if where == "both":
        (tmp_path / "training" / "fm" / "FashionMNIST").mkdir()  # the data that training used
    monkeypatch.chdir(here)
    if recorded is not None:
        training_dir = {"": None, "both": tmp_path / "training"}.get(where, tmp_path / where)
        write_run_record(run_dir, recorded.format(tmp=tmp_path), training_dir)
    given = given.format(tmp=tmp_path) if given else None
    assert class_data_root(given, run_dir) == used.format(tmp=tmp_path)


def test_the_class_column_uses_the_runs_data_root_from_any_folder(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no data here: the run was trained with data.root=<its tmp>/data
    overrides = [f"ckpt={trained_run}", f"out_dir={tmp_path / 'out'}", "classes.enabled=true"]
    analyze(compose_analyze(*overrides, "classes.system_dir=/nonexistent", "latent.dims=[0]", "latent.values=[1]"))
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["classes_data_root"] == str(trained_run.parent / "data") and "base_classes" in metrics
    assert f"the data and classifier in {trained_run.parent / 'data'}, the run's data.root" in capsys.readouterr().out
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # no data copied, no classifier trained here


def test_seconds_leave_out_the_one_off_training_of_the_classifier(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = classifier.train_classifier

    def slow_training(*args, **kwargs) -> classifier.FashionClassifier:
        time.sleep(1)
        return train(*args, **kwargs)

    monkeypatch.setattr(classifier, "train_classifier", slow_training)
    data_root = write_fake_fmnist(tmp_path / "data" / "FashionMNIST" / "raw").parents[1]  # no classifier cached yet
    overrides = [
        f"ckpt={trained_run}", f"out_dir={tmp_path / 'out'}", "classes.enabled=true", f"classes.data_root={data_root}",
        "classes.system_dir=/nonexistent", "latent.dims=[0]", "latent.values=[1]", "latent.num_images=2",
    ]  # fmt: skip
    for trains in (True, False):
        started = time.perf_counter()
        analyze(compose_analyze(*overrides))
        took = time.perf_counter() - started
        metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
        report = (tmp_path / "out" / "report.md").read_text()
        assert ("classifier_seconds" in metrics) == trains and ("training the classifier once" in report) == trains
        if trains:
            assert metrics["classifier_seconds"] >= 1 and metrics["seconds"] <= took - metrics["classifier_seconds"]
            assert f"on cpu (plus {metrics['classifier_seconds']:.1f} s training the classifier once)." in report


class BlankingGenerator(nn.Module):
    """Number 0 darkens every pixel: from about 30 on, the images are black (nearly blank); the others draw noise."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 784, bias=False)
        weight = torch.randn(784, 4, generator=torch.Generator().manual_seed(0))
        weight[:, 0] = -1.0
        self.fc1.weight.data = weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc1(z)).view(-1, 1, 28, 28)


class ChangedClasses:
    """A stand-in for the classifier: the base images (its first call) are of class 0, all others of class 1."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.full((len(images),), 0 if self.calls == 1 else 1)


def test_nearly_blank_images_are_told_from_garments() -> None:
    black = -torch.ones(5, 1, 28, 28)
    black.view(5, -1)[:, :20] = 1.0  # 20 stray white pixels (2.6%), as the audit's MLP drew with z[0] = 100
    grey = torch.full((1, 1, 28, 28), 0.3)
    sparse = -torch.ones(1, 1, 28, 28)
    sparse.view(-1)[:40] = 0.0  # 5% of the pixels: under the least real image (8.0% of the test split)
    assert nearly_blank(torch.cat([black, grey, sparse])).tolist() == [True] * 6 + [False]


@pytest.mark.integration
def test_no_real_fashion_mnist_image_is_nearly_blank() -> None:
    images_file = SYSTEM_DIR / "t10k-images-idx3-ubyte.gz"
    if not images_file.is_file():
        pytest.skip(f"the real data set is not installed in {SYSTEM_DIR}")
    pixels = np.frombuffer(gzip.decompress(images_file.read_bytes())[16:], dtype=np.uint8).reshape(-1, 1, 28, 28)
    assert not nearly_blank(torch.from_numpy(pixels).float() / 127.5 - 1).any()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_nearly_blank_images_are_said_so_and_are_no_class_change(
    lang: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gan.analysis.load_classifier", lambda datamodule: ChangedClasses())
    study = study_of(BlankingGenerator(), [0, 1], [1.0, 100.0])
    add_classes(study, {"dims": [0, 1]}, str(tmp_path), "/nonexistent")
    rows = {(row["value"], row["dim"]): row for row in study.metrics["study"]}
    assert [rows[key]["blank_images"] for key in rows] == [0, 0, 6, 0]
    assert [rows[key]["class_changes"] for key in rows] == [6, 6, 0, 6]  # blank: no class change
    report, text = build_report(study.metrics, "", [], False, lang), TEXT[lang]
    assert text["effect_some_blank"].format(effect=text["effect_large"], blank=6, total=12, dims="z[0]") in report
    assert text["value_classes_rest"].format(changed=6, rest=6) in report and "| 6 / 6 | 0 / 6 |" in report
    assert text["blank_at"].format(values="100 (6/6)") in report
    only_blank = study_of(BlankingGenerator(), [0], [100.0])
    add_classes(only_blank, {"dims": [0]}, str(tmp_path), "/nonexistent")
    report = build_report(only_blank.metrics, "", [], False, lang)
    assert text["summary_value"].split("{rows}")[0].format(value=100, effect=text["effect_blank"]) in report
    assert text["value_classes_none"] in report and text["effect_large"] not in report
