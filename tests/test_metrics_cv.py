import numpy as np
import pytest
from scipy import stats

from experiments import metrics as M
from experiments.cv import LeakageError, Split, check_disjoint, kfold_splits, loso_split, train_val_split


def test_classification_metrics_by_hand():
    y_true = [0, 0, 0, 0, 1, 1]
    y_pred = [0, 0, 1, 1, 1, 0]
    assert M.accuracy(y_true, y_pred) == pytest.approx(3 / 6)
    # class 0: P = 2/3, R = 2/4 -> F1 = 4/7; class 1: P = 1/3, R = 1/2 -> F1 = 2/5
    assert M.f1_macro(y_true, y_pred) == pytest.approx((4 / 7 + 2 / 5) / 2)
    assert M.f1_weighted(y_true, y_pred) == pytest.approx((4 * 4 / 7 + 2 * 2 / 5) / 6)
    np.testing.assert_array_equal(M.confusion(y_true, y_pred, [0, 1]), [[2, 2], [1, 1]])


def test_regression_metrics_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([2.0, 2.0, 4.0, 4.0])
    assert M.rmse(x, y) == pytest.approx(np.sqrt(0.5))
    assert M.pcc(x, y) == pytest.approx(stats.pearsonr(x, y)[0])
    # cov = 1.0, var_x = 1.25, var_y = 1.0, (mean diff)^2 = 0.25
    assert M.ccc(x, y) == pytest.approx(2 * 1.0 / (1.25 + 1.0 + 0.25))
    assert M.ccc(x, x) == pytest.approx(1.0)
    assert M.ccc(x, x + 10) < 0.1


def test_metric_errors():
    with pytest.raises(ValueError, match="shapes differ"):
        M.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="constant"):
        M.pcc([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        M.rmse([1.0, np.nan], [1.0, 2.0])


def test_mean_ci_matches_scipy_t():
    v = np.array([0.81, 0.77, 0.92, 0.85, 0.88, 0.79])
    mean, half = M.mean_ci(v, 0.95)
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    assert mean == pytest.approx(v.mean())
    assert half == pytest.approx((hi - lo) / 2)
    assert np.isnan(M.mean_ci([0.5])[1])


def test_loso_is_disjoint_by_subject():
    groups = np.repeat(["S2", "S3", "S4", "S5"], [5, 3, 4, 2])
    for name in ("S2", "S3", "S4", "S5"):
        s = loso_split(groups, name, n_val_subjects=1, seed=3)
        assert s.name == name and set(groups[s.test]) == {name}
        assert name not in set(groups[s.train]) | set(groups[s.val])
        assert len(set(groups[s.val])) == 1 and not set(groups[s.val]) & set(groups[s.train])
        assert len(s.train) + len(s.val) + len(s.test) == len(groups)
        # the validation subject is drawn with the seed, reproducibly, from the training subjects only
        again = loso_split(groups, name, n_val_subjects=1, seed=3)
        np.testing.assert_array_equal(again.val, s.val)
    plain = loso_split(groups, "S3")
    assert plain.val.size == 0 and sorted(plain.train.tolist()) == [i for i in range(14) if groups[i] != "S3"]
    with pytest.raises(KeyError, match="test subject 'S9': no such subject"):
        loso_split(groups, "S9")


def test_kfold_with_and_without_groups():
    splits = kfold_splits(20, 5, seed=1)
    assert sorted(np.concatenate([s.test for s in splits]).tolist()) == list(range(20))
    groups = np.repeat(np.arange(10), 2)
    for s in kfold_splits(20, 5, groups=groups):
        assert not set(groups[s.test]) & set(groups[s.train])


def test_leakage_is_refused():
    groups = np.array(["a", "a", "b", "b"])
    with pytest.raises(LeakageError, match="share subject"):
        check_disjoint(Split("x", np.array([0, 2]), np.array([1])), groups)
    with pytest.raises(LeakageError, match="share 1 item"):
        check_disjoint(Split("x", np.array([0, 1]), np.array([1, 2])))
    with pytest.raises(ValueError, match="at least 2 subjects"):
        loso_split(["a", "a"], "a")
    with pytest.raises(ValueError, match="at least 2 training subjects"):
        train_val_split(np.array([0, 1]), groups)


def test_cached_file_digest_trusts_only_old_unchanged_files(tmp_path, monkeypatch):
    import os

    from experiments import store

    f = tmp_path / "rec.bin"
    f.write_bytes(b"a" * 100)
    old = 1_000_000_000_000_000_000  # an mtime far in the past: outside the racy window
    os.utime(f, ns=(old, old))
    calls = []
    real = store.file_digest
    monkeypatch.setattr(store, "file_digest", lambda p: calls.append(p) or real(p))
    first = store.cached_file_digest(f, tmp_path / "memo")
    assert store.cached_file_digest(f, tmp_path / "memo") == first and len(calls) == 1  # memo used
    f.write_bytes(b"b" * 100)  # rewritten in place, same size: the new mtime tells
    assert store.cached_file_digest(f, tmp_path / "memo") == real(f) != first and len(calls) == 2
    g = tmp_path / "fresh.bin"
    g.write_bytes(b"x")  # modified just now: inside the racy window, never trusted from the memo
    store.cached_file_digest(g, tmp_path / "memo")
    n = len(calls)
    store.cached_file_digest(g, tmp_path / "memo")
    assert len(calls) == n + 1
