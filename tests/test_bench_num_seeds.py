"""benchmarks/bench_num_seeds.py: the ratio arithmetic on known numbers and its argument checks
(the timing itself is a benchmark, not a test)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import bench_num_seeds as bns  # noqa: E402


def test_summary_medians_and_per_pair_ratios():
    runs = [{"pair": 0, "num_seeds": 1, "fps": 100.0}, {"pair": 0, "num_seeds": 8, "fps": 300.0},
            {"pair": 1, "num_seeds": 8, "fps": 500.0}, {"pair": 1, "num_seeds": 1, "fps": 125.0},
            {"pair": 2, "num_seeds": 1, "fps": 110.0}, {"pair": 2, "num_seeds": 8, "error": "exit 1: boom"}]
    out = bns.summary(runs, 8)
    assert out["fps_one_seed"] == 110.0 and out["fps_8_seeds"] == 400.0
    assert out["ratio_per_pair"] == [3.0, 4.0]  # pair 2 has no 8-seed number: no ratio
    assert out["ratio"] == 3.5
    assert out["errors"] == ["exit 1: boom"]


def test_summary_of_separate_updates_is_apart():
    runs = [{"pair": 0, "num_seeds": 1, "fps": 100.0}, {"pair": 0, "num_seeds": 8, "fps": 300.0},
            {"pair": 0, "num_seeds": 8, "separate": True, "fps": 150.0}]
    out = bns.summary(runs, 8)
    assert out["ratio"] == 3.0 and out["ratio_separate"] == 1.5 and out["fps_8_seeds_separate"] == 150.0


def test_summary_without_any_pair_has_no_ratio():
    assert bns.summary([{"pair": 0, "num_seeds": 1, "na": "unknown option"}], 4)["ratio"] is None


@pytest.mark.parametrize("argv", [["--seeds", "1"], ["--pairs", "0"], ["--frames-per-seed", "0"]])
def test_bad_arguments_are_refused(argv):
    with pytest.raises(SystemExit) as e:
        bns.parse_args(argv)
    assert e.value.code == 2
