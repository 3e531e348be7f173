"""The keras-tuner search is keyed per fold and never sees its test subject (issue 9.1)."""
import json

import numpy as np
import pytest

pytest.importorskip("keras_tuner")

from experiments.cv import LeakageError  # noqa: E402
from experiments.search import (SearchKey, open_project, project_name, read_best,  # noqa: E402
                                write_best)

SPACE = {"direction": {"class_name": "Choice", "values": ["both"]}}


def key(**changes):
    base = dict(fold="S3", train=["S2", "S5"], val=["S4"], profile="smoke", fingerprint="abc", space=SPACE,
                seed=0, tuner="grid", extra={"epochs": 1})
    return SearchKey(**{**base, **changes})


# ----------------------------------------------------------------------------- experiments.search
@pytest.mark.parametrize("change", [
    {"fold": "S6"}, {"train": ["S2", "S6"]}, {"val": ["S5"], "train": ["S2", "S4"]}, {"profile": "quick"},
    {"fingerprint": "abd"}, {"space": {"direction": {"class_name": "Choice", "values": ["both", "ecg_to_eda"]}}},
    {"seed": 1}, {"tuner": "random"}, {"extra": {"epochs": 2}},
])
def test_every_input_of_the_search_changes_the_project(change):
    assert project_name(key(**change)) != project_name(key())
    assert project_name(key(train=["S5", "S2"])) == project_name(key())  # order of subjects is irrelevant
    assert project_name(key()).startswith("fold-S3-")


@pytest.mark.parametrize("change, error, match", [
    ({"train": ["S2", "S3"]}, LeakageError, "test fold is among"),
    ({"val": ["S3"]}, LeakageError, "test fold is among"),
    ({"val": ["S2"]}, LeakageError, "both the training and the validation"),
    ({"val": []}, ValueError, "no validation subjects"),
    ({"tuner": "hyper"}, ValueError, "tuner: 'hyper'"),
    ({"space": {}}, ValueError, "empty search space"),
])
def test_a_leaky_or_incomplete_key_is_refused(change, error, match):
    with pytest.raises(error, match=match):
        key(**change)


def test_a_project_is_reused_only_by_the_same_key(tmp_path):
    folder = open_project(tmp_path, key())
    assert folder == tmp_path / project_name(key())
    assert json.loads((folder / "search_key.json").read_text())["fold"] == "S3"
    assert open_project(tmp_path, key()) == folder  # same key: resumable
    other = folder.parent / project_name(key(seed=5))
    other.mkdir()
    (other / "search_key.json").write_text(json.dumps(key().to_dict()))  # a key file that does not match
    with pytest.raises(ValueError, match=r"different search \(fields \['seed'\] differ\)"):
        open_project(tmp_path, key(seed=5))
    stray = tmp_path / project_name(key(seed=6))
    stray.mkdir()
    (stray / "oracle.json").write_text("{}")
    with pytest.raises(ValueError, match="tuner files without search_key.json"):
        open_project(tmp_path, key(seed=6))


def test_write_best_keeps_provenance_and_refuses_a_leaky_record(tmp_path):
    record = {"fold": "S3", "project": project_name(key()), "search_key": key().to_dict(), "best": 1}
    path = write_best(tmp_path, "S3", record)
    assert path == tmp_path / record["search_key"]["profile"] / "fold-S3" / "best.json"
    assert read_best(tmp_path, "S3") == record == read_best(tmp_path, "S3", record["search_key"]["profile"])
    with pytest.raises(ValueError, match="expected 'S4'"):
        write_best(tmp_path, "S4", record)
    with pytest.raises(ValueError, match="no 'search_key'"):
        write_best(tmp_path, "S3", {"fold": "S3", "project": "p"})
    leaky = {**record, "search_key": {**key().to_dict(), "val": ["S3"]}}
    with pytest.raises(LeakageError, match="trained or validated on S3"):
        write_best(tmp_path, "S3", leaky)
    with pytest.raises(FileNotFoundError):
        read_best(tmp_path, "S9")


# ----------------------------------------------------------------------------- the AttX search
@pytest.fixture(scope="module")
def prepared(wesad_root, tmp_path_factory):
    """The smoke data, cut to at most 6 windows of each class per subject (trials stay short)."""
    from attx_keras.pipeline import SubjectWindows
    from attx_keras.task import WesadStressTask
    from experiments.task import Prepared

    full = WesadStressTask().prepare({"n_subjects": 3}, str(wesad_root), tmp_path_factory.mktemp("cache"))
    small = {}
    for s, w in full.data.items():
        idx = np.concatenate([np.flatnonzero(w.y == c)[:6] for c in (0, 1)])
        small[s] = SubjectWindows(s, w.ecg[idx], w.eda[idx], w.y[idx], w.code[idx], w.start[idx])
    return Prepared(full.fingerprint + "-small", full.source, small)


def _spy_on_fits(monkeypatch, windows):
    """Record, for every trial's fit, the subjects of its training and validation windows."""
    from attx_keras import tuning

    owner = {}
    for subject, w in windows.items():
        for row in w.ecg:
            owner[row.tobytes()] = subject
    calls = []
    original = tuning.AttXHyperModel.fit

    def fit(self, hp, model, x, y, validation_data=None, **kwargs):
        seen_train = {owner[r.tobytes()] for r in np.asarray(x["ecg"])}
        seen_val = {owner[r.tobytes()] for r in np.asarray(validation_data[0]["ecg"])}
        calls.append({"hp": dict(hp.values), "train": seen_train, "val": seen_val})
        return original(self, hp, model, x, y, validation_data=validation_data, **kwargs)

    monkeypatch.setattr(tuning.AttXHyperModel, "fit", fit)
    return calls


def test_two_folds_in_one_directory_search_separately_and_never_see_their_test_subject(
        prepared, tmp_path, monkeypatch):
    from attx_keras.tuning import run_search

    calls = _spy_on_fits(monkeypatch, prepared.data)
    common = dict(profile="smoke", fingerprint=prepared.fingerprint, tuner="grid", epochs=1, verbose=0,
                  directions=["both"], stage_choices=["1"], jit=False)
    records = {}
    for fold in ("S2", "S3"):
        before = len(calls)
        records[fold] = out = run_search(prepared.data, fold, tmp_path, **common)
        mine = calls[before:]
        # with one project for both folds, S3 would find S2's finished trial and run none
        assert len(mine) == 1 == out["trials"], f"fold {fold} must run its own trial, ran {len(mine)}"
        for call in mine:  # every trial, the chosen one included, trained and validated without the test subject
            assert fold not in call["train"] | call["val"]
            assert call["val"] == set(out["val_subjects"]) and call["train"] == set(out["train_subjects"])
        chosen = [c for c in mine if c["hp"] == out["best_hyperparameters"]]
        assert chosen and all(fold not in c["train"] | c["val"] for c in chosen)
        assert (tmp_path / out["project"] / "search_key.json").is_file()
        write_best(tmp_path, fold, out)
    assert records["S2"]["project"] != records["S3"]["project"]
    for fold in ("S2", "S3"):
        best = read_best(tmp_path, fold)
        assert best["fold"] == best["search_key"]["fold"] == fold
        assert fold not in best["search_key"]["train"] + best["search_key"]["val"]
    # the same search again resumes its finished project: no new trial, same winner
    before = len(calls)
    again = run_search(prepared.data, "S2", tmp_path, **common)
    assert len(calls) == before and again["project"] == records["S2"]["project"]
    assert again["best_hyperparameters"] == records["S2"]["best_hyperparameters"]


def test_search_split_uses_the_one_loso_implementation(prepared):
    from attx_keras.task import subject_groups
    from attx_keras.tuning import search_split
    from experiments.cv import loso_split

    groups, train, val = search_split(prepared.data, "S4", n_val_subjects=1, seed=3)
    split = loso_split(subject_groups(prepared.data), "S4", n_val_subjects=1, seed=3)
    np.testing.assert_array_equal(train, split.train)
    np.testing.assert_array_equal(val, split.val)
    with pytest.raises(ValueError, match="--val-subjects"):
        search_split(prepared.data, "S4", n_val_subjects=0)
    with pytest.raises(KeyError, match="S99"):
        search_split(prepared.data, "S99")


# ----------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("args, match", [
    (["--folds", "S99"], "error: --folds: 'S99'"),
    (["--folds", "S2", "--directions", "sideways"], "error: --directions: 'sideways'"),
    (["--folds", "S2", "--stage-sets", "4"], "error: --stage-sets: '4'"),
    (["--folds", "S2", "--val-subjects", "0"], "error: --val-subjects: 0"),
    (["--folds", "S2", "--max-trials", "0"], "error: --max-trials: 0"),
    (["--profile", "huge"], "error: experiment 'table1' has no profile 'huge'"),
])
def test_cli_errors_are_one_line(args, match, wesad_root, tmp_path, monkeypatch, capsys):
    from attx_keras.tuning import main
    from experiments.errors import run_cli

    monkeypatch.setenv("PHYSIO_FUSION_CACHE", str(tmp_path / "cache"))
    argv = ["--profile", "smoke", "--data-root", str(wesad_root), "--directory", str(tmp_path / "kt"), *args]
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(match) and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "kt").exists() or not any((tmp_path / "kt").rglob("best.json"))


def test_folds_option():
    from attx_keras.task import WesadStressTask
    from experiments.search import resolve_folds
    from experiments.task import Prepared

    # the skeleton's "all": the task's folds without the profile's n_folds (AttX: subjects by number)
    subjects = WesadStressTask().folds(Prepared("f", "fake", dict.fromkeys(["S10", "S2", "S3", "S4"])), {})
    assert resolve_folds(["S2"], subjects, "profile") == ["S2"]
    assert resolve_folds(["S2"], subjects, "all") == ["S2", "S3", "S4", "S10"]
    assert resolve_folds(["S2"], subjects, "S4, S10") == ["S4", "S10"]
    with pytest.raises(ValueError, match="--folds: ','"):
        resolve_folds(["S2"], subjects, ",")


def test_cli_writes_the_best_json_of_each_fold(wesad_root, tmp_path, monkeypatch, capsys):
    from attx_keras.tuning import main
    from experiments.errors import run_cli

    monkeypatch.setenv("PHYSIO_FUSION_CACHE", str(tmp_path / "cache"))
    directory = tmp_path / "kt"
    argv = ["--profile", "smoke", "--data-root", str(wesad_root), "--directory", str(directory), "--folds", "S4",
            "--directions", "both", "--stage-sets", "3", "--epochs", "1", "--no-jit", "--verbose", "0"]
    assert run_cli(main, argv) == 0
    assert [p.relative_to(directory).as_posix() for p in directory.glob("*/fold-*/best.json")] == \
        ["smoke/fold-S4/best.json"]
    best = read_best(directory, "S4", "smoke")
    assert best["profile"] == "smoke" and best["search_key"]["profile"] == "smoke"
    assert (directory / best["project"] / "search_key.json").is_file()
    out = capsys.readouterr().out
    assert "fold S4: best" in out and "fold S4: retraining" in out
    # issue 18.5: the chosen configuration, retrained on every subject but S4, scored on S4 only
    held = best["held_out"]
    assert held["test_subject"] == "S4" and held["train_subjects"] == ["S2", "S3"]
    assert held["config"] == {"fusion": "attx", "direction": "both", "stages": [3]} and held["epochs"] == 1
    assert 0 <= held["f1_macro"] <= 1 and held["n_test"] > 0
    table = out[out.index("| Held-out subject"):].splitlines()
    assert table[2].startswith("| S4 | III | III | ECG⇄EDA | 3 | 1 | ")
    assert table[2].endswith(f"| {100 * best['best_val_f1_macro']:.2f} | {100 * held['f1_macro']:.2f} |")
    assert (directory / "smoke" / "summary.md").read_text().count("| S4 |") == 1
    # a search of another profile writes beside it, never over it
    quick = dict(best, profile="quick", search_key={**best["search_key"], "profile": "quick"}, note="quick")
    write_best(directory, "S4", quick)
    assert read_best(directory, "S4", "smoke") == best and read_best(directory, "S4", "quick")["note"] == "quick"
    with pytest.raises(ValueError, match="winners of the profiles"):
        read_best(directory, "S4")
    # the same command again reuses the finished search and its held-out score (no retraining)
    assert run_cli(main, argv) == 0
    assert "fold S4: retraining" not in capsys.readouterr().out
    assert read_best(directory, "S4", "smoke")["held_out"] == held
