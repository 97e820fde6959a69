"""The benchmark scripts run and print their numbers (their speed is not tested: see the README's Performance)."""

from pathlib import Path

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
