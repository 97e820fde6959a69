"""The benchmark scripts run and print their numbers (their speed is not tested: see the README's Performance)."""

from pathlib import Path

import pytest

from benchmarks.train_speed import batch_seconds, compose_train, drawings_per_epoch, periodic_batches
from gan.training import register_resolvers
from tests.conftest import run_script


def test_train_speed_prints_both_comparisons_data_loading_and_memory(fake_data_root: Path) -> None:
    result = run_script(
        "benchmarks/train_speed.py",
        "--batches-mlp=3",
        "--batches-conv=3",
        "--",
        f"data.root={fake_data_root}",
        "data.system_dir=/nonexistent",
        "data.download=false",
        "data.batch_size=2",  # 48 batches: enough for the warm-up and the timed ones
        "metrics.num_samples=64",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for model in ("mlp", "conv"):
        assert f"| {model} | 3 |" in result.stdout
    assert "data loading alone:" in result.stdout
    assert "peak memory (RSS):" in result.stdout


def test_train_speed_refuses_too_few_timed_batches_in_one_line() -> None:
    result = run_script("benchmarks/train_speed.py", "--batches-mlp", "1")
    assert result.returncode == 2
    assert "argument --batches-mlp: must be a whole number of at least 2, got '1'" in result.stderr


def test_train_speed_reports_a_bad_setting_in_one_line(fake_data_root: Path) -> None:
    result = run_script("benchmarks/train_speed.py", "--models", "mlp", "--", f"data.root={fake_data_root}", "seed=-1")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: seed must be an integer from 0 to 4294967295, got -1"


@pytest.mark.parametrize(
    ("overrides", "epoch_seconds", "share"),
    [
        ([], 4.0, 1 / 3),  # 3 fast MLP epochs: drawn once, at the end
        ([], 35.0, 2 / 3),  # after the 2nd epoch (70 s since the start), and at the end
        ([], 80.0, 1.0),  # every epoch ends a minute after the last drawing
        (["callbacks.loss_curve.redraw_seconds=0"], 4.0, 1.0),
        (["callbacks.loss_curve=null"], 4.0, 0.0),
    ],
)
def test_the_benchmark_counts_the_loss_curve_as_often_as_a_run_draws_it(
    overrides: list[str], epoch_seconds: float, share: float, tmp_path: Path
) -> None:
    register_resolvers()
    cfg = compose_train("mlp", overrides, str(tmp_path))
    assert drawings_per_epoch(cfg, epoch_seconds) == pytest.approx(share)


def test_the_batch_time_counts_the_periodic_work_and_leaves_out_pauses() -> None:
    one_logging_step_in_10 = ([1.0] * 9 + [11.0]) * 10  # a plain median of batches would say 1.0
    assert batch_seconds(one_logging_step_in_10, 10) == pytest.approx(2.0)
    paused = one_logging_step_in_10[:50] + [1000.0] * 10 + one_logging_step_in_10[60:]  # one run of ten
    assert batch_seconds(paused, 10) == pytest.approx(2.0)
    assert batch_seconds([1.0, 3.0], 50) == pytest.approx(2.0)  # fewer batches than a period: their mean


@pytest.mark.parametrize(
    ("overrides", "period"),
    [
        ([], 50),  # logging and the loss check every 50 batches (the progress bar's redraws go by the clock)
        (["trainer.log_every_n_steps=7"], 350),
        (["trainer.log_every_n_steps=0", "callbacks.loss_curve.check_every_n_batches=20"], 20),
        (["trainer.log_every_n_steps=8", "callbacks.loss_curve=null"], 200),  # train.py's own loss check: 50
    ],
)
def test_the_period_is_the_one_after_which_all_periodic_work_comes_round(
    overrides: list[str], period: int, tmp_path: Path
) -> None:
    register_resolvers()
    assert periodic_batches(compose_train("mlp", overrides, str(tmp_path))) == period
