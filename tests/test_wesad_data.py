"""WESAD reader (real format, restricted unpickler), synthetic writer and windowing pipeline."""
import pickle

import numpy as np
import pytest

from attx_keras.data.synthetic import simulate_subject
from attx_keras.data.wesad import (CHEST_KEYS, SUBJECT_IDS, UnsafePickleError, WesadFormatError, read_dataset,
                                   read_subject)
from attx_keras.pipeline import PipelineParams, label_runs, load_subject_windows, preprocess_arrays


def write_pickle(path, obj, protocol=2):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def test_synthetic_subject_has_the_wesad_format(wesad_root):
    with open(wesad_root / "S2" / "S2.pkl", "rb") as fh:
        raw = pickle.load(fh, encoding="latin1")
    assert set(raw) == {"signal", "label", "subject"} and raw["subject"] == "S2"
    chest, wrist = raw["signal"]["chest"], raw["signal"]["wrist"]
    n = raw["label"].size
    assert raw["label"].dtype == np.int32
    assert {k: v.shape for k, v in chest.items()} == {k: (n, c) for k, c in CHEST_KEYS.items()}
    assert all(v.dtype == np.float64 for v in chest.values())
    seconds = n / 700
    for key, fs, ch in (("ACC", 32, 3), ("BVP", 64, 1), ("EDA", 4, 1), ("TEMP", 4, 1)):
        assert wrist[key].shape == (int(seconds * fs), ch), key
    assert set(np.unique(raw["label"])) == {0, 1, 2, 3, 4}
    # protocol order of the real study: baseline first, each condition followed by rest
    order = [c for c, _, _ in label_runs(raw["label"]) if c != 0]
    assert order[0] == 1 and order[1:] in ([3, 4, 2, 4], [2, 4, 3, 4])


def test_synthetic_stress_effect_is_physiological():
    """Stress raises heart rate and tonic EDA within a subject (the documented effect)."""
    import neurokit2 as nk

    raw = simulate_subject(5, seed=0, minutes=8)
    label, ecg = raw["label"], raw["signal"]["chest"]["ECG"][:, 0]
    eda = raw["signal"]["chest"]["EDA"][:, 0]
    rates = {}
    for code in (1, 2):
        runs = [(a, b) for c, a, b in label_runs(label) if c == code]
        a, b = runs[0]
        peaks = nk.ecg_peaks(ecg[a:b], sampling_rate=700)[1]["ECG_R_Peaks"]
        rates[code] = 60 * 700 / np.median(np.diff(peaks))
        rates[f"eda{code}"] = eda[a + (b - a) // 2:b].mean()
    assert rates[2] > rates[1] + 1.5
    assert rates["eda2"] > rates["eda1"]


def test_synthetic_effect_is_split_between_modalities():
    """Every subject reacts in both modalities (weights >= 0.25) and the split varies between subjects,
    as documented in attx_keras.data.synthetic; the condition levels follow the documented formulas."""
    from attx_keras.data import synthetic as syn

    params = [syn._subject_params(np.random.default_rng([0, s])) for s in SUBJECT_IDS]
    w_hr = np.array([p["w_hr"] for p in params])
    w_eda = np.array([p["w_eda"] for p in params])
    np.testing.assert_allclose(w_hr + w_eda, 1.25)
    assert w_hr.min() >= 0.25 and w_eda.min() >= 0.25
    assert w_hr.max() - w_hr.min() > 0.4  # some subjects react mainly in heart rate, others in EDA
    p = params[0]
    rise_hr = syn._heart_rate(p, 2) - syn._heart_rate(p, 1)
    rise_eda = syn._tonic_eda(p, 2) - syn._tonic_eda(p, 1)
    assert rise_hr == pytest.approx(16 * p["reactivity"] * p["w_hr"])
    assert rise_eda == pytest.approx(0.35 * p["reactivity"] * p["w_eda"] * p["eda0"])
    assert syn._hrv(p, 2) < syn._hrv(p, 1) and syn._scr_factor(p, 2) > syn._scr_factor(p, 3) > 1


def test_read_dataset_finds_subjects(wesad_root):
    data = read_dataset(wesad_root)
    assert list(data) == ["S2", "S3", "S4"]
    s = data["S3"]
    assert s.fs == 700 and s.ecg.shape == s.eda.shape == s.label.shape
    assert s.seconds == pytest.approx(180, abs=60)


@pytest.fixture()
def good(wesad_root):
    with open(wesad_root / "S2" / "S2.pkl", "rb") as fh:
        return pickle.load(fh, encoding="latin1")


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.pop("label"), r"missing key top level\['label'\]"),
    (lambda d: d["signal"]["chest"].pop("EDA"), r"missing key \['signal'\]\['chest'\]\['EDA'\]"),
    (lambda d: d["signal"]["chest"].__setitem__("ECG", d["signal"]["chest"]["ECG"][:-5]),
     r"\['ECG'\] has \d+ samples, expected \d+"),
    (lambda d: d["signal"]["chest"].__setitem__("ACC", d["signal"]["chest"]["ACC"][:, :2]), r"expected \(N, 3\)"),
    (lambda d: d["signal"]["chest"]["EDA"].__setitem__(slice(7000, 7700), np.nan),
     r"\['EDA'\] contains 700 NaN/inf sample\(s\), first at sample 7000"),
    (lambda d: d["label"].__setitem__(slice(0, 10), 9), r"unknown code\(s\) \[9\]"),
    (lambda d: d.__setitem__("label", d["label"][:-3500]), r"\['ACC'\] has \d+ samples, expected \d+ \(the length of 'label'\)"),
])
def test_malformed_files_get_clear_errors(good, tmp_path, mutate, match):
    mutate(good)
    path = write_pickle(tmp_path / "S2" / "S2.pkl", good)
    with pytest.raises(WesadFormatError, match=match) as err:
        read_subject(path)
    assert str(path) in str(err.value)


def test_too_short_recording(tmp_path):
    n = 700 * 5
    obj = {"subject": "S2", "label": np.ones(n, np.int32),
           "signal": {"chest": {k: np.zeros((n, c)) for k, c in CHEST_KEYS.items()}}}
    with pytest.raises(WesadFormatError, match="5.0 s long, expected at least 10 s"):
        read_subject(write_pickle(tmp_path / "S2.pkl", obj))


def test_missing_and_truncated_files(tmp_path, wesad_root):
    with pytest.raises(FileNotFoundError, match="S9.pkl"):
        read_subject(tmp_path / "S9" / "S9.pkl")
    with pytest.raises(FileNotFoundError, match="no WESAD subject pickles"):
        read_dataset(tmp_path)
    broken = tmp_path / "S2" / "S2.pkl"
    broken.parent.mkdir()
    broken.write_bytes((wesad_root / "S2" / "S2.pkl").read_bytes()[:1000])
    with pytest.raises(WesadFormatError, match="not a readable pickle"):
        read_subject(broken)


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = write_pickle(tmp_path / "S2" / "S2.pkl", {"label": Payload(marker), "signal": {}})
    with pytest.raises(UnsafePickleError, match=r"S2.pkl: refused to load global '(posix|os)\.system'"):
        read_subject(path)
    assert not marker.exists()
    eval_path = write_pickle(tmp_path / "S3" / "S3.pkl", {"x": 1}, protocol=0)
    eval_path.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        read_subject(eval_path)


def test_windows_never_span_two_label_segments():
    p = PipelineParams()
    fs = 700
    rng = np.random.default_rng(0)
    codes = [0, 1, 0, 2, 3, 4, 1]
    lengths = [13, 47, 3, 25, 9, 30, 12]  # seconds; the 9-s amusement run is shorter than a window
    label = np.concatenate([np.full(s * fs, c) for c, s in zip(codes, lengths)])
    ecg, eda = rng.normal(size=label.size), rng.normal(size=label.size) + 5
    w = preprocess_arrays(ecg, eda, label, p)
    assert w.ecg.shape[1:] == (2560, 1) and w.ecg.dtype == np.float32
    lab256 = label[np.minimum(np.round(np.arange(int(np.ceil(label.size * 256 / 700))) * 700 / 256).astype(int),
                              label.size - 1)]
    for start, code in zip(w.start, w.code):
        assert set(np.unique(lab256[start:start + 2560])) == {code}
    expected = sum((s * 256 - 2560) // 1280 + 1 for c, s in zip(codes, lengths) if c in (1, 2, 3) and s >= 10)
    assert len(w) == expected
    np.testing.assert_array_equal(w.y, (w.code == 2).astype(int))
    assert set(w.code) == {1, 2}


def test_pipeline_cache_is_keyed_by_content_and_params(wesad_root, tmp_path):
    path = wesad_root / "S3" / "S3.pkl"
    w1, k1 = load_subject_windows(path, PipelineParams(), tmp_path)
    assert len(list((tmp_path / "wesad-windows").glob("*.npz"))) == 1
    w2, k2 = load_subject_windows(path, PipelineParams(), tmp_path)
    assert k1 == k2
    np.testing.assert_array_equal(w1.ecg, w2.ecg)
    _, k3 = load_subject_windows(path, PipelineParams(eda_cutoff=2.0), tmp_path)
    assert k3 != k1
    copy = tmp_path / "S3" / "S3.pkl"
    copy.parent.mkdir()
    data = bytearray(path.read_bytes())
    copy.write_bytes(bytes(data))
    assert load_subject_windows(copy, PipelineParams(), None)[1] == k1  # same bytes, same key
    obj = pickle.loads(bytes(data), encoding="latin1")
    obj["signal"]["chest"]["EDA"][0] += 1.0
    write_pickle(copy, obj)
    assert load_subject_windows(copy, PipelineParams(), None)[1] != k1


def _prepare_windows(root, cache):
    from attx_keras.task import WesadStressTask

    return WesadStressTask().prepare(dict(n_subjects=3), str(root), cache).data


def test_normalisation_is_per_subject(wesad_root, tmp_path):
    """Issue 9.5: a subject's windows are a function of its own recording only.

    (a) Rescaling and shifting half of another subject's recording (e.g. the held-out S3 of a LOSO
    fold) changes that subject's statistics and windows but leaves every other subject's
    windows bit-identical; (b) the windows equal an independent recomputation from scipy that
    uses only the subject's own mean and standard deviation, so no pooled statistic enters.
    """
    import shutil

    from scipy import signal as sps

    root = tmp_path / "data"
    shutil.copytree(wesad_root, root)
    before = _prepare_windows(root, tmp_path / "cache1")
    s3 = root / "S3" / "S3.pkl"
    obj = pickle.loads(s3.read_bytes(), encoding="latin1")
    for key in ("ECG", "EDA"):  # the second half 40 times larger and shifted: S3's mean and std move a lot
        x = obj["signal"]["chest"][key]
        x[x.shape[0] // 2:] = x[x.shape[0] // 2:] * 40.0 + 25.0
    write_pickle(s3, obj)
    after = _prepare_windows(root, tmp_path / "cache2")
    for subject in ("S2", "S4"):
        for k in ("ecg", "eda", "y", "start"):
            np.testing.assert_array_equal(getattr(before[subject], k), getattr(after[subject], k), err_msg=subject)
    assert not np.allclose(before["S3"].eda, after["S3"].eda, atol=0.1)  # the change did reach S3 itself

    s = read_subject(root / "S4" / "S4.pkl")  # (b) independent recomputation for S4, own statistics only
    p = PipelineParams()
    for name, raw, sos in (
            ("ecg", s.ecg, sps.butter(4, p.ecg_band, btype="bandpass", fs=700, output="sos")),
            ("eda", s.eda, sps.butter(4, p.eda_cutoff, btype="lowpass", fs=700, output="sos"))):
        filtered = sps.sosfiltfilt(sos, raw)
        own = sps.resample_poly((filtered - filtered.mean()) / filtered.std(), 64, 175)
        expected = np.stack([own[a:a + p.window] for a in after["S4"].start])
        np.testing.assert_allclose(getattr(after["S4"], name)[..., 0], expected, rtol=1e-4, atol=1e-4, err_msg=name)


def test_loso_split_never_trains_on_the_test_subject(wesad_root, tmp_path):
    from attx_keras.task import WesadStressTask

    task = WesadStressTask()
    prepared = task.prepare(dict(n_subjects=3), str(wesad_root), tmp_path)
    assert task.folds(prepared, {"n_folds": None}) == ["S2", "S3", "S4"]
    for fold in task.folds(prepared, {}):
        groups, split = task.split(prepared.data, fold)
        assert set(groups[split.test]) == {fold} and fold not in set(groups[split.train])
        assert len(split.train) + len(split.test) == len(groups)


def test_subject_ids_are_the_fifteen_of_wesad():
    assert SUBJECT_IDS == (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17)


def test_pipeline_on_real_ecg_recovers_heart_rate(realdata):
    """Real PLUX ECG (1000 Hz ADC counts) through the paper's band-pass: R peaks stay detectable."""
    import neurokit2 as nk

    from preprocessing.filters import butter_bandpass
    from preprocessing.resample import resample

    raw = np.loadtxt(realdata / "ecg_eda_plux" / "ecg.txt")
    ecg = raw if raw.ndim == 1 else raw[:, -1]
    ecg700 = resample(ecg, 1000, 700)
    filtered = butter_bandpass(ecg700, 5, 15, 700)
    peaks = nk.ecg_peaks(filtered, sampling_rate=700)[1]["ECG_R_Peaks"]
    hr = 60 * 700 / np.median(np.diff(peaks))
    assert 40 < hr < 140


def test_inference_windows_are_the_training_windows():
    """windows_for_inference runs the training preprocessing: on a 700 Hz recording with one label
    run it returns exactly preprocess_arrays' windows and starts."""
    from attx_keras.pipeline import windows_for_inference

    rng = np.random.default_rng(1)
    n = 700 * 31
    ecg, eda = rng.normal(size=n), 3 + np.cumsum(rng.normal(size=n)) * 1e-3
    trained = preprocess_arrays(ecg, eda, np.ones(n, np.int64), PipelineParams(), subject="S2", fs=700.0)
    ecg_w, eda_w, start_s = windows_for_inference(ecg, 700, eda, 700.0)
    assert ecg_w.shape == eda_w.shape == (len(trained), 2560, 1) and ecg_w.dtype == np.float32
    np.testing.assert_array_equal(ecg_w, trained.ecg)
    np.testing.assert_array_equal(eda_w, trained.eda)
    np.testing.assert_allclose(start_s, trained.start / 256.0)
    np.testing.assert_allclose(start_s, [0, 5, 10, 15, 20])


def test_inference_resamples_each_modality_from_its_own_rate():
    """ECG at 1000 Hz and EDA at 4 Hz (an Empatica E4): both end at 256 Hz, cut to the common span."""
    from attx_keras.pipeline import condition_signal, windows_for_inference

    rng = np.random.default_rng(2)
    ecg = rng.normal(size=1000 * 40)  # 40 s
    eda = 2 + np.sin(np.arange(4 * 25) / 7.0)  # 25 s at 4 Hz
    ecg_w, eda_w, start_s = windows_for_inference(ecg, 1000, eda, 4, name="e4")
    np.testing.assert_allclose(start_s, [0, 5, 10, 15])  # 25 s: windows at 0, 5, 10, 15 s
    own = condition_signal(eda, 4.0, "EDA", PipelineParams(), "e4: EDA")  # z-scored, resampled to 256 Hz
    np.testing.assert_allclose(eda_w[:, :, 0], [own[a:a + 2560] for a in range(0, 4 * 1280, 1280)], rtol=1e-5, atol=1e-6)
    cut = condition_signal(ecg[:25_000], 1000.0, "ECG", PipelineParams(), "e4: ECG")  # statistics of the common 25 s
    np.testing.assert_allclose(ecg_w[1, :, 0], cut[1280:1280 + 2560], rtol=1e-5, atol=1e-6)


def test_inference_on_real_plux_recording(realdata):
    from attx_keras.pipeline import windows_for_inference

    ecg = np.loadtxt(realdata / "ecg_eda_plux" / "ecg.txt")
    eda = np.loadtxt(realdata / "ecg_eda_plux" / "eda.txt")
    ecg_w, eda_w, start_s = windows_for_inference(ecg, 1000, eda, 1000, name="plux")
    assert ecg_w.shape == eda_w.shape == (2, 2560, 1)  # 15 s of ECG bounds the common span
    np.testing.assert_allclose(start_s, [0, 5])
    assert np.isfinite(ecg_w).all() and abs(float(ecg_w.std()) - 1) < 0.5
