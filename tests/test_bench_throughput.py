"""benchmarks/bench_throughput.py (ours vs a base revision) and benchmarks/gpu_check.py: the table and
ratio arithmetic on known numbers, argument errors, the no-CUDA refusal, and two SMOKE runs (tiny
frames) of the scripts end to end."""
import csv
import json
import os
import re
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import bench_throughput as bt  # noqa: E402
import gpu_check as gc  # noqa: E402


def _run(env_type, side, pair, fps=None, rss=None, **kw):
    r = {"env_type": env_type, "side": side, "pair": pair, **kw}
    if fps is not None:
        r.update(fps=fps, rss_mb=rss, frames=1000, seconds=1000 / fps)
    return r


def test_ratio_is_the_median_of_per_pair_ratios_and_rss_the_peak():
    runs = [_run("gridworld_varibad", "base", 0, 1000, 300), _run("gridworld_varibad", "ours", 0, 2000, 310),
            _run("gridworld_varibad", "ours", 1, 3000, 320), _run("gridworld_varibad", "base", 1, 1000, 350),
            _run("gridworld_varibad", "base", 2, 4000, 340), _run("gridworld_varibad", "ours", 2, 2000, 330)]
    (row,) = bt.summarize(runs)
    assert row["base_fps"] == 1000 and row["ours_fps"] == 2000  # medians of (1000, 1000, 4000), (2000, 3000, 2000)
    assert row["ratio"] == 2.0 and row["ratio_min"] == 0.5 and row["ratio_max"] == 3.0  # pairs: 2, 3, 0.5
    assert row["pairs"] == 3
    assert (row["base_rss_mb"], row["ours_rss_mb"]) == (350, 330)
    # 15x target of the original's 340-600 frames/s: 5,100-9,000; 2000 meets neither end
    assert row["target"] == "5,100-9,000" and row["target_met"] == "no"
    assert row["vs_original"] == pytest.approx(2000 / 470)
    line = bt.format_table([row]).splitlines()[2]
    assert line == "| gridworld_varibad | 1,000 | 2,000 | 2.00 [0.50-3.00] | 350 / 330 | 5,100-9,000 | no | 4.3x |"


def test_a_pair_with_a_failed_side_is_left_out_of_the_ratio():
    runs = [_run("room_hyperx", "base", 0, 1000, 1), _run("room_hyperx", "ours", 0, error="exit 1: boom"),
            _run("room_hyperx", "ours", 1, 30000, 1), _run("room_hyperx", "base", 1, 1500, 1)]
    (row,) = bt.summarize(runs)
    assert row["ratio"] == 20.0 and row["pairs"] == 1
    assert row["target"] == "24,000" and row["target_met"] == "yes"


def test_target_cells_at_the_edges_of_a_range():
    assert bt.target_cells("gridworld_varibad", 9000)["target_met"] == "yes"
    assert bt.target_cells("gridworld_varibad", 8999)["target_met"] == "low end only"
    assert bt.target_cells("gridworld_varibad", 5100)["target_met"] == "low end only"
    assert bt.target_cells("gridworld_varibad", 5099)["target_met"] == "no"
    assert bt.target_cells("cheetah_dir_varibad", 1e6) == {"target": None, "target_met": None, "vs_original": None}


def test_base_without_the_env_type_prints_na():
    runs = [_run("tmaze_ln_varibad:splagger", "base", 0, na="ConfigError: unknown method 'splagger'"),
            _run("tmaze_ln_varibad:splagger", "ours", 0, 250, 900)]
    (row,) = bt.summarize(runs)
    assert row["base_note"] == "n/a" and row["ratio"] is None
    line = bt.format_table([row]).splitlines()[2]
    assert line == "| tmaze_ln_varibad --method splagger (XL) | n/a | 250 | n/a | n/a / 900 | - | - | - |"


def test_env_alone_row_compares_training_with_env_stepping():
    runs = [_run("cheetah_dir_varibad", "base", 0, 2000, 400, env_fps=10000),
            _run("cheetah_dir_varibad", "ours", 0, 3000, 400, env_fps=15000),
            _run("cheetah_dir_varibad", "ours", 1, 9000, 400, env_fps=15000),
            _run("cheetah_dir_varibad", "base", 1, 2000, 400, env_fps=10000)]
    train, alone = bt.summarize(runs)
    assert train["ratio"] == pytest.approx(3.0)  # pairs 1.5 and 4.5
    assert alone["base_fps"] == 10000 and alone["ours_fps"] == 15000 and alone["ratio"] == 1.5
    assert alone["train_over_env"] == pytest.approx(0.4) and alone["target_met"] is False  # median of 0.2, 0.6
    assert "| ours training / env alone >= 0.5 | no | training/env = 0.40 |" in bt.format_table([train, alone])


def test_env_type_with_method():
    assert bt.parse_env_type("tmaze_ln_varibad:splagger") == ("tmaze_ln_varibad", {"method": "splagger"})
    assert bt.parse_env_type("gridworld_varibad") == ("gridworld_varibad", {})
    with pytest.raises(ValueError):
        bt.parse_env_type(":splagger")


def test_write_out_json_and_csv(tmp_path):
    rows = bt.summarize([_run("gridworld_varibad", "base", 0, 1000, 300), _run("gridworld_varibad", "ours", 0, 1500, 300)])
    paths = bt.write_out(str(tmp_path / "r"), rows, [], {"base": "x"})
    assert paths == [str(tmp_path / "r.json"), str(tmp_path / "r.csv")]
    assert json.load(open(paths[0]))["rows"][0]["ratio"] == 1.5
    (rec,) = csv.DictReader(open(paths[1]))
    assert float(rec["ratio"]) == 1.5 and rec["env_type"] == "gridworld_varibad"


@pytest.mark.parametrize("argv, needle", [
    ([], "--base"),
    (["--base", "no-such-rev-xyz"], "not a commit"),
    (["--base", "HEAD", "--pairs", "0"], "--pairs must be >= 1"),
    (["--base", "HEAD", "--frames", "-5"], "--frames must be >= 1"),
    (["--base", "HEAD", "--env-types", ":splagger"], "bad env-type"),
])
def test_bench_throughput_argument_errors(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        bt.parse_args(argv)
    assert e.value.code == 2 and needle in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["--device", "gpu"], "--device must be cpu, cuda or cuda:N"),
    (["--budget", "0"], "must be positive"),
])
def test_gpu_check_argument_errors(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        gc.parse_args(argv)
    assert e.value.code == 2 and needle in capsys.readouterr().err


def test_gpu_check_counts_pytest_outcomes_with_spaces_in_ids():
    out = ("tests/a.py::t[--device cuda] PASSED  [ 10%]\ntests/a.py::u SKIPPED (needs a GPU)  [20%]\n"
           "tests/b.py::C::v[x y] FAILED [30%]\nFAILED tests/b.py::C::v[x y] - assert 0\n")
    assert gc.count_outcomes(out) == {"passed": 1, "skipped": 1, "failed": 1}
    assert gc.failed_ids(out) == ["tests/b.py::C::v[x y]"]


def test_gpu_check_finds_the_explicit_gpu_tests():
    ids = gc.device_sensitive_tests()
    assert "tests/test_mime_envs.py::test_runs_on_gpu" in ids
    assert not any("test_checkpoint.py" in i for i in ids)  # "No space left on device" is prose, not device code
    assert not any("test_bench_throughput.py" in i for i in ids)  # not itself (a test here runs gpu_check)
    assert set(gc.device_sensitive_tests(words=("cuda",))) <= set(ids)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_child_drops_only_the_optional_options_a_tree_lacks():
    """An option the tree lacks makes the run n/a, unless it is one the benchmark only adds for speed."""
    na = bt.run_child(ROOT, "gridworld_varibad", 960, {"no_such_option_xyz": 1})
    assert "unknown option --no_such_option_xyz" in na["na"]
    ok = bt.run_child(ROOT, "gridworld_varibad", 960, {"no_such_option_xyz": 1}, optional=("no_such_option_xyz",))
    assert ok["frames"] >= 960 and ok["fps"] > 0 and ok["rss_mb"] > 50, ok


def test_gpu_check_without_cuda_exits_2_with_the_message():
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu_check.py"), "--device", "cuda"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "torch.cuda.is_available() is False" in p.stderr and "--device cpu --quick" in p.stderr


def test_smoke_gpu_check_quick_on_cpu():
    """SMOKE: the whole gpu_check on the CPU at tiny sizes prints its one table (~40 s on a loaded 2-core box)."""
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu_check.py"), "--device", "cpu", "--quick"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    table = [ln for ln in p.stdout.splitlines() if ln.startswith("| ")]
    assert len(table) == 5, p.stdout  # header + tests + 2 timings + num_seeds
    assert "| gridworld_varibad training " in p.stdout and "| cheetah_dir_varibad training " in p.stdout
    assert "frames/s" in table[2] and "frames/s" in table[3]
    assert "not built" in table[4] or "frames/s" in table[4]


def test_smoke_bench_throughput_one_env_type_tiny(tmp_path):
    """SMOKE: base = HEAD in a temporary worktree vs this tree, one pair of gridworld runs of one
    iteration each (~20 s); the worktree is gone afterwards."""
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_throughput.py"), "--base", "HEAD",
                        "--env-types", "gridworld_varibad", "--frames", "960", "--pairs", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "| gridworld_varibad | " in p.stdout
    (row,) = json.load(open(out))["rows"]
    assert row["base_fps"] > 0 and row["ours_fps"] > 0 and row["pairs"] == 1 and row["base_rss_mb"] > 50
    tree = re.search(r"\(worktree (\S+)\)", p.stdout).group(1)
    assert not os.path.exists(tree)
    assert tree not in subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True).stdout
