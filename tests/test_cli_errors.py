"""The one error policy (experiments.errors) at the `python -m experiments` entry: every class of
user mistake is one `error:` line on stderr, exit status 2, no traceback, nothing stored;
`--debug` shows the traceback; a bug keeps its traceback."""
import errno
import os
import pickle
import shutil
import subprocess
import sys

import pytest

from experiments import registry
from experiments import runner as R
from experiments.cli import entry
from experiments.cv import LeakageError
from attx_keras.data.wesad import UnsafePickleError, WesadFormatError
from attx_keras.pipeline import PipelineInputError
from experiments.errors import (BUG_LINE, SweepError, UnknownNameError, UserInputError, error_line, format_error,
                                run_cli)
from experiments.versions import LibraryVersionError
from experiments.task import Prepared
from tests import toy_task


@pytest.fixture(autouse=True)
def toy_registry(monkeypatch):
    real = registry._all()
    monkeypatch.setattr(registry, "_all", lambda: {**real, "toy": toy_task.SPEC})
    monkeypatch.delenv("TOY_LOG", raising=False)


def stored(results):
    return sorted(p.name for p in results.rglob("*") if p.suffix in (".json", ".keras", ".md", ".csv"))


def one_error_line(capsys, results, *must_contain):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err, err
    for text in must_contain:
        assert text in lines[0], lines[0]
    assert stored(results) == [], stored(results)  # nothing was written to the results store
    return lines[0]


def toy(results, *args):
    return ["run", "toy", "--results", str(results), *args]


def test_unknown_experiment_profile_and_row(tmp_path, capsys):
    res = tmp_path / "res"
    assert entry(["run", "nope", "--results", str(res)]) == 2
    one_error_line(capsys, res, "no experiment named 'nope'", "toy")
    assert entry(toy(res, "--profile", "huge")) == 2
    one_error_line(capsys, res, "'toy' has no profile 'huge'", "smoke")
    assert entry(toy(res, "--rows", "high")) == 2
    one_error_line(capsys, res, "has no row 'high'", "low")


def test_bad_option_values_are_one_line(tmp_path, capsys):
    res = tmp_path / "res"
    for args, text in ((["--jobs", "0"], "argument --jobs: 0 (expected a whole number >= 1)"),
                       (["--jobs", "two"], "argument --jobs: 'two' is not an integer"),
                       (["--max-folds", "-1"], "argument --max-folds"),
                       (["--executor", "slurm"], "argument --executor: invalid choice: 'slurm'"),
                       (["--backend", "theano"], "argument --backend: invalid choice: 'theano'")):
        with pytest.raises(SystemExit) as exc:
            entry(toy(res, *args))
        assert exc.value.code == 2
        one_error_line(capsys, res, text, "(see python -m experiments run --help)")


def test_missing_data_root_and_unusable_results_folder(tmp_path, capsys):
    res = tmp_path / "res"
    assert entry(toy(res, "--data-root", str(tmp_path / "nowhere"))) == 2
    one_error_line(capsys, res, f"--data-root {tmp_path / 'nowhere'}: no such folder (expected")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert entry(toy(blocker)) == 2  # the results "folder" is a file: an OSError with its path first
    line = one_error_line(capsys, tmp_path / "none", str(blocker))
    assert "(expected" in line


def test_missing_backend_names_the_option(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a))
    res = tmp_path / "res"
    assert entry(toy(res, "--backend", "jax")) == 2
    line = one_error_line(capsys, res)
    assert line == "error: --backend jax: module 'jax' is not installed (expected pip install jax)"


def test_data_changed_during_the_sweep_is_one_line(tmp_path, capsys, monkeypatch):
    real = R._prepared
    calls = []

    def changing(*args):
        task, prepared = real(*args)
        calls.append(1)
        if len(calls) == 1:
            return task, prepared
        return task, Prepared("another-fingerprint", prepared.source, prepared.data)

    monkeypatch.setattr(R, "_prepared", changing)
    res = tmp_path / "res"
    assert entry(toy(res)) == 2
    one_error_line(capsys, res, "data changed during the sweep", "another-fingerprint", "(expected")


def test_truncated_subject_pickle_names_the_file(tmp_path, capsys, wesad_root):
    root = tmp_path / "wesad"
    shutil.copytree(wesad_root, root)
    bad = root / "S3" / "S3.pkl"
    bad.write_bytes(bad.read_bytes()[:1000])
    res = tmp_path / "res"
    cache = tmp_path / "cache"
    os.environ["PHYSIO_FUSION_CACHE"] = str(cache)
    try:
        status = entry(["run", "table1", "--profile", "smoke", "--rows", "feature", "--data-root", str(root),
                        "--results", str(res)])
    finally:
        del os.environ["PHYSIO_FUSION_CACHE"]
    assert status == 2
    one_error_line(capsys, res, "S3.pkl")


def test_debug_shows_the_traceback_and_bugs_keep_theirs(tmp_path, capsys):
    res = tmp_path / "res"
    with pytest.raises(KeyError, match="no experiment named"):
        entry(["run", "nope", "--results", str(res), "--debug"])

    def buggy(argv):
        raise TypeError("a bug, not a user's mistake")

    with pytest.raises(TypeError):
        run_cli(buggy, ["--debug"])
    assert run_cli(buggy, []) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "TypeError: a bug, not a user's mistake" in err

    def interrupted(argv):
        raise KeyboardInterrupt

    assert run_cli(interrupted, []) == 130
    assert capsys.readouterr().err.startswith("error: interrupted")


def test_a_closed_stdout_is_not_an_error(capfd):
    def piped_into_head(argv):
        raise BrokenPipeError(32, "Broken pipe")

    saved = os.dup(1)
    try:
        assert run_cli(piped_into_head, []) == 141
    finally:
        os.dup2(saved, 1)  # run_cli points stdout at /dev/null: give pytest its stdout back
        os.close(saved)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("err, line", [
    (UserInputError(format_error("--rows", "'x'", "a row name")), "error: --rows: 'x' (expected a row name)"),
    (UnknownNameError("fold 'S99': no such subject"), "error: fold 'S99': no such subject"),
    (LeakageError("split S2: train and test share subject(s) ['S2']"), "error: split S2: train and test share"),
    (FileNotFoundError(2, "No such file or directory", "/data/S2.pkl"),
     "error: /data/S2.pkl: no such file or directory (expected an existing path)"),
    (PermissionError(13, "Permission denied", "/results"),
     "error: /results: permission denied (expected a readable/writable path)"),
    (pickle.UnpicklingError("/data/S2.pkl: pickle data was truncated"),
     "error: /data/S2.pkl: pickle data was truncated"),
    (SweepError("data root x: data changed"), "error: data root x: data changed"),
    (ModuleNotFoundError("No module named 'torch'", name="torch"),
     "error: module 'torch' is not installed (expected pip install torch)"),
    (UserInputError("line one\nline two"), "error: line one line two"),
    (WesadFormatError("/data/S2.pkl: missing key top level['label']"), "error: /data/S2.pkl: missing key"),
    (UnsafePickleError("/data/S2.pkl: refused to load global 'os.system'"), "error: /data/S2.pkl: refused"),
    (PipelineInputError("subject S5: chest EDA: constant signal"), "error: subject S5: chest EDA"),
    (NotADirectoryError(20, "Not a directory", "/results"), "error: /results: not a directory (expected a folder)"),
    (OSError(errno.ENOSPC, "No space left on device", "/results/x.json"),
     "error: /results/x.json: no space left on device (expected a usable path)"),
    (LibraryVersionError("keras 3.6.0: too old"), "error: keras 3.6.0: too old"),
])
def test_error_line_of_each_class(err, line):
    assert error_line(err).startswith(line)
    assert "\n" not in error_line(err)


def test_not_user_mistakes_have_no_error_line():
    assert error_line(TypeError("x")) is None
    assert error_line(RuntimeError("from a library")) is None
    # a plain ValueError, KeyError or OSError no input check of ours raised is a bug (issue 18.6)
    assert error_line(ValueError("operands could not be broadcast together")) is None
    assert error_line(KeyError("loss")) is None
    assert error_line(OSError(errno.EIO, "Input/output error")) is None
    assert error_line(ZeroDivisionError("division by zero")) is None
    assert error_line(ModuleNotFoundError("No module named 'attx_keras.nope'", name="attx_keras.nope")) is None


def test_the_real_entry_point_prints_one_line_or_with_debug_a_traceback(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, "-m", "experiments", "run", "table9", "--results", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and out.stderr.startswith("error: ")
    assert "Traceback" not in out.stderr
    out = subprocess.run(cmd + ["--debug"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 1 and "Traceback" in out.stderr and "no experiment named 'table9'" in out.stderr
    assert stored(tmp_path) == []


def test_an_unexpected_exception_keeps_its_traceback_and_asks_for_a_report(tmp_path, capsys, monkeypatch):
    """Issue 18.6: an exception in the middle of a run that no input check raised (here a plain
    ValueError, as NumPy or Keras would raise) is a bug: traceback, a line asking for a report,
    exit status 1; never a one-line `error:` that hides it."""
    import numpy as np

    def broken(self, config, fold, prepared, params, options):
        return {"metrics": {"accuracy": float(np.ones(3) @ np.ones(4))}}

    monkeypatch.setattr(toy_task.ToyTask, "run_fold", broken)
    res = tmp_path / "res"
    assert entry(toy(res)) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ValueError: matmul" in err and "broken" in err
    assert err.strip().splitlines()[-1] == BUG_LINE.format(kind="ValueError")
    assert not any(line.startswith("error: ") for line in err.splitlines())
    # the same run's user mistakes stay one line, exit 2
    assert entry(toy(res, "--rows", "high")) == 2
    one_error_line(capsys, res, "has no row 'high'")


def test_a_bug_in_the_real_entry_point_exits_1_with_the_report_line(tmp_path):
    code = ("import sys; from experiments.errors import run_cli\n"
            "def main(argv):\n    {}['missing']\n"
            "sys.exit(run_cli(main))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Traceback" in out.stderr and "KeyError: 'missing'" in out.stderr
    assert out.stderr.strip().splitlines()[-1] == BUG_LINE.format(kind="KeyError")
