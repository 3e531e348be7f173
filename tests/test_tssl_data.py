"""transformer_ssl readers: AMIGOS .mat and the three EEG corpora, on synthetic, malformed and real files."""
import io

import numpy as np
import pytest
import scipy.io

from transformer_ssl.data import amigos, corpora
from transformer_ssl.data.amigos import AmigosFormatError, find_participants, read_participant
from transformer_ssl.data.corpora import CorpusFormatError, load_eeg
from transformer_ssl.data.synthetic import GENERATOR_VERSION
from transformer_ssl.data.synthetic_amigos import (ecg_template, ensure_synthetic_amigos, participant_params, simulate_trial,
                                                   write_synthetic_amigos)
from transformer_ssl.data.synthetic_corpora import (KAYA_NAMES, WAY_NAMES, ensure_synthetic_corpora,
                                                    write_eegmmidb_run)

PAPER = ("F7", "F3", "T7", "P7", "O1", "O2", "P8", "T8", "F4", "F8")


@pytest.fixture(scope="module")
def amigos_root(tmp_path_factory):
    """P03 (NaN run), P05 (missing ratings), P08 (no long videos): 8-s trials."""
    root = tmp_path_factory.mktemp("amigos")
    write_synthetic_amigos(root, [3, 5, 8], seed=0, trial_seconds=8.0, long_trial_seconds=8.0)
    return root


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory):
    return ensure_synthetic_corpora(tmp_path_factory.mktemp("corpora"), seconds=12.0, n_per_corpus=2)


# ---------------------------------------------------------------- AMIGOS
def test_read_participant_layout(amigos_root):
    p = read_participant(amigos_root / "Data_Preprocessed_P03.mat")
    assert p.participant == "P03" and len(p.trials) == 20
    assert {t.video_id for t in p.trials} == set(amigos.VIDEO_IDS)
    assert [t.index for t in p.trials] == list(range(20))
    t = p.trials[0]
    assert t.signals.shape == (17, 8 * 128) and t.fs == 128.0 and t.channels == amigos.CHANNELS
    assert t.channels[1] == "F7" and t.channels[15] == "ECG Left"
    assert all(1 <= tr.arousal <= 9 and 1 <= tr.valence <= 9 for tr in p.trials)
    # the long videos come last (the real study's second session), short ones in a shuffled order
    assert {t.video_id for t in p.trials[16:]} == set(amigos.LONG_VIDEO_IDS)


def test_reader_reports_defects(amigos_root):
    p3 = read_participant(amigos_root / "Data_Preprocessed_P03.mat")
    (nan,) = [i for i in p3.issues if i.kind == "nan"]
    assert nan.index == 2 and "ECG Left" in nan.detail
    assert p3.trials[2].nan_fraction[15] == pytest.approx(3 / 8)
    p5 = read_participant(amigos_root / "Data_Preprocessed_P05.mat")
    (miss,) = [i for i in p5.issues if i.kind == "no ratings"]
    assert miss.index == 7 and not p5.trials[7].has_ratings and np.isnan(p5.trials[7].arousal)
    p8 = read_participant(amigos_root / "Data_Preprocessed_P08" / "Data_Preprocessed_P08.mat")
    assert len(p8.trials) == 16
    assert sorted(i.video_id for i in p8.issues if i.kind == "empty") == sorted(amigos.LONG_VIDEO_IDS)
    assert sum("empty" in line for line in p8.report) == 4


def test_find_participants_flat_and_nested(amigos_root):
    assert [p.name for p in find_participants(amigos_root)] == [
        "Data_Preprocessed_P03.mat", "Data_Preprocessed_P05.mat", "Data_Preprocessed_P08.mat"]
    assert find_participants(amigos_root, [8])[0].parent.name == "Data_Preprocessed_P08"
    with pytest.raises(FileNotFoundError, match=r"\['P04'\] not found"):
        find_participants(amigos_root, ["P04"])


def _tiny_vars(n=300, rng=None):
    rng = rng or np.random.default_rng(0)
    cells = {k: np.empty((1, 20), dtype=object) for k in amigos.KEYS}
    for i, vid in enumerate(amigos.VIDEO_IDS):
        cells["joined_data"][0, i] = rng.normal(size=(n, 17))
        cells["labels_selfassessment"][0, i] = np.array([[5.0, 6.0] + [1.0] * 10])
        cells["labels_ext_annotation"][0, i] = np.zeros((1, 3))
        cells["VideoIDs"][0, i] = vid
    return cells


def _write(tmp_path, variables, name="Data_Preprocessed_P01.mat"):
    path = tmp_path / name
    buf = io.BytesIO()
    scipy.io.savemat(buf, variables, format="5")
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda v: v.pop("VideoIDs"), r"missing variable 'VideoIDs'"),
    (lambda v: v["joined_data"].__setitem__((0, 4), np.zeros((300, 16))), r"joined_data\{5\}.*shape \(300, 16\).*17"),
    (lambda v: v.__setitem__("joined_data", v["joined_data"][:, :19]), r"'joined_data' has 19 cells, expected 1x20"),
    (lambda v: v.__setitem__("VideoIDs", v["VideoIDs"][:, :16]), r"'VideoIDs' has 16 cells, expected 1x20"),
    (lambda v: v["VideoIDs"].__setitem__((0, 3), "777"), r"unknown id\(s\) \['777'\]"),
    (lambda v: v["VideoIDs"].__setitem__((0, 3), "4"), r"VideoIDs repeats \['4'\]"),
    (lambda v: v["labels_selfassessment"].__setitem__((0, 2), np.ones((1, 5))), r"labels_selfassessment\{3\}.*\(1, 5\)"),
])
def test_malformed_amigos(tmp_path, mutate, message):
    v = _tiny_vars()
    mutate(v)
    path = _write(tmp_path, v)
    with pytest.raises(AmigosFormatError, match=message) as err:
        read_participant(path)
    assert str(path) in str(err.value)


def test_amigos_empty_trial_and_missing_ratings_do_not_crash(tmp_path):
    v = _tiny_vars()
    v["joined_data"][0, 0] = np.zeros((0, 0))
    v["labels_selfassessment"][0, 0] = np.zeros((1, 0))
    v["labels_selfassessment"][0, 1] = np.zeros((1, 0))
    v["joined_data"][0, 2][10:50, 3] = np.nan
    v["labels_selfassessment"][0, 3] = np.array([[11.0, 5.0] + [1.0] * 10])  # arousal outside 1-9
    p = read_participant(_write(tmp_path, v))
    assert len(p.trials) == 19 and p.trials[0].index == 1
    kinds = sorted((i.index, i.kind) for i in p.issues)
    assert kinds == [(0, "empty"), (1, "no ratings"), (2, "nan"), (3, "no ratings")]
    bad = p.trials[2]
    assert bad.index == 3 and not bad.has_ratings and np.isnan(bad.arousal) and np.isnan(bad.valence)
    assert bad.ratings[0] == 11.0  # the file's value is kept in .ratings
    assert any("trial 3" in line and "arousal = 11, expected ratings between 1 and 9" in line for line in p.report)
    assert p.trials[1].nan_fraction[3] == pytest.approx(40 / 300)


def test_amigos_bad_file_name_and_not_mat(tmp_path):
    with pytest.raises(AmigosFormatError, match="expected Data_Preprocessed_P<NN>.mat"):
        read_participant(tmp_path / "P01.mat")
    bad = tmp_path / "Data_Preprocessed_P02.mat"
    bad.write_bytes(b"not a mat file")
    with pytest.raises(AmigosFormatError, match="not a readable MAT file"):
        read_participant(bad)


def test_synthetic_folder_carries_generator_version(tmp_path, monkeypatch):
    from transformer_ssl.data import synthetic_amigos

    calls = []
    monkeypatch.setattr(synthetic_amigos, "write_synthetic_amigos", lambda root, parts, **kw: calls.append((root, list(parts))))
    root = ensure_synthetic_amigos(tmp_path, n_participants=2, trial_seconds=7.0)
    assert GENERATOR_VERSION in root.name and len(GENERATOR_VERSION) == 8
    assert calls == [(root, [1, 2])]
    with pytest.raises(ValueError, match="n_participants"):
        ensure_synthetic_amigos(tmp_path, n_participants=41)


def _heart_rate(ecg, fs=128):
    import neurokit2 as nk

    peaks = nk.ecg_peaks(ecg, sampling_rate=fs)[1]["ECG_R_Peaks"]
    hr = 60.0 * fs / np.diff(peaks)
    return np.median(hr), np.std(hr)


def _band_power(x, fs, lo, hi):
    from scipy.signal import welch

    f, pxx = welch(x, fs=fs, nperseg=256)
    return pxx[(f >= lo) & (f <= hi)].sum()


def test_synthetic_effects_within_subject():
    """Felt arousal raises heart rate, lowers HRV and occipital alpha; felt valence shifts frontal alpha
    to the right hemisphere (F4 over F3) - for the same participant, same seeds."""
    hr_gain, hrv_ratio, alpha_ratio, asym = [], [], [], []
    for participant in range(4):
        p = participant_params(np.random.default_rng([0, participant]))
        p.update(dhr=5.0, k_alpha=0.25, k_fa=0.2)  # mid-range effect sizes of the documented distributions
        template = ecg_template(p, np.random.default_rng(0))
        hi = simulate_trial(p, 1.0, 0.0, 30.0, np.random.default_rng(1), template=template)
        lo = simulate_trial(p, -1.0, 0.0, 30.0, np.random.default_rng(1), template=template)
        (hr_hi, sd_hi), (hr_lo, sd_lo) = _heart_rate(hi[:, 15]), _heart_rate(lo[:, 15])
        hr_gain.append(hr_hi - hr_lo)
        hrv_ratio.append(sd_hi / sd_lo)
        o1 = amigos.CHANNELS.index("O1")
        alpha_ratio.append(_band_power(hi[:, o1], 128, 8, 12) / _band_power(lo[:, o1], 128, 8, 12))
        pos = simulate_trial(p, 0.0, 1.0, 30.0, np.random.default_rng(2), template=template)
        f3, f4 = amigos.CHANNELS.index("F3"), amigos.CHANNELS.index("F4")
        asym.append(np.log(_band_power(pos[:, f4], 128, 8, 12) / _band_power(pos[:, f3], 128, 8, 12)))
    assert np.all(np.array(hr_gain) > 4.0), hr_gain           # ~ 2 * dHR = 10 bpm
    assert np.mean(hrv_ratio) < 0.9, hrv_ratio                # 0.75 / 1.25 = 0.6 expected
    assert np.all(np.array(alpha_ratio) < 0.8), alpha_ratio   # (0.75 / 1.25)^2 = 0.36 at O1
    assert np.mean(asym) > 0.1, asym


# ---------------------------------------------------------------- EEG corpora
def test_synthetic_corpora_read_back(corpus_root):
    recs = [load_eeg(p) for p in corpora.find_recordings(corpus_root)]
    assert sorted(r.corpus for r in recs) == ["eegmmidb", "eegmmidb", "kaya2018", "kaya2018",
                                              "way-eeg-gal", "way-eeg-gal"]
    assert sorted(r.source_fs for r in recs) == [128.0, 160.0, 200.0, 500.0, 500.0, 1000.0]
    for r in recs:
        assert r.data.shape == (10, 12 * 128) and r.fs == 128.0 and r.channels == PAPER and r.units == "uV"
        assert 2.0 < r.data.std() < 100.0
    kaya = next(r for r in recs if r.corpus == "kaya2018")
    assert kaya.source_channels == ("F7", "F3", "T3", "T5", "O1", "O2", "T6", "T4", "F4", "F8")
    mmi = next(r for r in recs if r.corpus == "eegmmidb")
    assert mmi.source_channels[0] == "F7.." and mmi.source_channels[2] == "T7.."


def test_resampling_keeps_frequency(tmp_path):
    """A 10 Hz sine on F7 of a 500 Hz WAY file is a 10 Hz sine at 128 Hz."""
    fs, n = 500, 500 * 8
    sig = np.random.default_rng(0).normal(0, 1, (n, 32))
    sig[:, WAY_NAMES.index("F7")] = 40 * np.sin(2 * np.pi * 10 * np.arange(n) / fs)
    path = _write_way(tmp_path, sig, WAY_NAMES, fs)
    r = load_eeg(path)
    spec = np.abs(np.fft.rfft(r.data[0]))
    assert np.fft.rfftfreq(r.data.shape[1], 1 / 128)[np.argmax(spec)] == pytest.approx(10.0, abs=0.2)
    assert r.data[0].std() == pytest.approx(40 / np.sqrt(2), rel=0.05)


def _write_way(tmp_path, sig, names, fs, name="HS_P1_S1.mat"):
    cell = np.empty((1, len(names)), dtype=object)
    cell[0, :] = list(names)
    return _write(tmp_path, {"hs": {"eeg": {"sig": sig, "names": cell, "samplingrate": float(fs)}}}, name)


def _write_kaya(tmp_path, data, names, fs, n_s=None, name="CLASubjectA1601083StLRHand.mat"):
    cell = np.empty((1, len(names)), dtype=object)
    cell[0, :] = list(names)
    o = {"data": data, "chnames": cell, "sampFreq": float(fs), "nS": float(data.shape[0] if n_s is None else n_s)}
    return _write(tmp_path, {"o": o}, name)


def test_malformed_corpora(tmp_path):
    rng = np.random.default_rng(0)
    renamed = list(WAY_NAMES)
    renamed[renamed.index("P8")] = "PX"
    with pytest.raises(CorpusFormatError, match=r"HS_P1_S1.mat: missing EEG channel\(s\) \['P8'\]"):
        load_eeg(_write_way(tmp_path, rng.normal(size=(1000, 32)), renamed, 500))
    with pytest.raises(CorpusFormatError, match=r"sampling rate 250 Hz; expected 500 Hz"):
        load_eeg(_write_way(tmp_path, rng.normal(size=(1000, 32)), WAY_NAMES, 250))
    with pytest.raises(CorpusFormatError, match=r"hs.eeg.sig has 31 columns but 32 channel names"):
        load_eeg(_write_way(tmp_path, rng.normal(size=(1000, 31)), WAY_NAMES, 500))
    with pytest.raises(CorpusFormatError, match=r"sampling rate 250 Hz; expected 200 or 1000 Hz"):
        load_eeg(_write_kaya(tmp_path, rng.normal(size=(1000, 22)), KAYA_NAMES, 250))
    with pytest.raises(CorpusFormatError, match=r"o.nS = 5 but o.data has 1000 samples"):
        load_eeg(_write_kaya(tmp_path, rng.normal(size=(1000, 22)), KAYA_NAMES, 200, n_s=5))
    dup = list(KAYA_NAMES)
    dup[dup.index("A1")] = "T7"  # T7 and its old name T3 both present
    with pytest.raises(CorpusFormatError, match=r"channel T7 appears 2 times"):
        load_eeg(_write_kaya(tmp_path, rng.normal(size=(1000, 22)), dup, 200))
    data = rng.normal(size=(1000, 22))
    data[700, KAYA_NAMES.index("O2")] = np.nan
    with pytest.raises(CorpusFormatError, match=r"channel O2 has 1 NaN/inf sample\(s\), first at sample 700 \(3.50 s"):
        load_eeg(_write_kaya(tmp_path, data, KAYA_NAMES, 200))
    with pytest.raises(CorpusFormatError, match=r"missing variable 'o'; found \['x'\]"):
        load_eeg(_write(tmp_path, {"x": np.ones(3)}, "HaLTSubjectB.mat"))
    with pytest.raises(CorpusFormatError, match="unknown EEG corpus file name"):
        load_eeg(tmp_path / "recording.edf")


def test_eegmmidb_bad_rate(tmp_path, monkeypatch):
    from transformer_ssl.data import synthetic_corpora

    monkeypatch.setattr(synthetic_corpora, "EEGMMIDB_128HZ_SUBJECTS", ())
    path = write_eegmmidb_run(tmp_path / "S002R01.edf", 2, seconds=3)
    assert load_eeg(path).source_fs == 160.0
    monkeypatch.setitem(corpora.RATES, "eegmmidb", (128.0,))
    with pytest.raises(CorpusFormatError, match=r"S002R01.edf: sampling rate 160 Hz; expected 128 Hz for eegmmidb"):
        load_eeg(path)


def test_real_eegmmidb(realdata):
    r1 = load_eeg(realdata / "eegmmidb" / "S001R01.edf")
    assert r1.source_fs == 160.0 and r1.fs == 128.0 and r1.channels == PAPER
    assert r1.data.shape == (10, 61 * 128)  # 61 one-second records
    assert r1.source_channels == ("F7..", "F3..", "T7..", "P7..", "O1..", "O2..", "P8..", "T8..", "F4..", "F8..")
    assert 10.0 < np.median(r1.data.std(axis=1)) < 200.0  # microvolts, not volts
    r3 = load_eeg(realdata / "eegmmidb" / "S001R03.edf")
    assert r3.data.shape == (10, 125 * 128)


# ---------------------------------------------------------------- ECG corpora (ECG model pretraining)
def write_wesad_like(path, seconds=12.0, hr=60.0):
    """A minimal WESAD-format pickle (chest signals at 700 Hz; a 1-mV spike train as ECG)."""
    import pickle

    n = int(seconds * 700)
    ecg = np.zeros(n)
    ecg[:: int(700 * 60 / hr)] = 1.0
    chest = {k: np.zeros((n, c)) + 0.01 * np.random.default_rng(0).normal(size=(n, c))
             for k, c in {"ACC": 3, "EMG": 1, "EDA": 1, "Temp": 1, "Resp": 1}.items()}
    chest["ECG"] = ecg[:, None]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"subject": path.stem, "signal": {"chest": chest, "wrist": {}},
                                   "label": np.ones(n, dtype=np.int32)}, protocol=2))
    return path


def write_edf(path, labels, fs, seconds, fill=None):
    import pyedflib

    w = pyedflib.EdfWriter(str(path), len(labels), file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeaders([dict(label=lab, dimension="uV", sample_frequency=fs, physical_max=5000.0, physical_min=-5000.0,
                             digital_max=32767, digital_min=-32768) for lab in labels])
    rng = np.random.default_rng(0)
    w.writeSamples([fill(i) if fill else rng.normal(0, 20, fs * seconds) for i in range(len(labels))])
    w.close()
    return path


def test_load_ecg_wesad_and_edf(tmp_path):
    w = corpora.load_ecg(write_wesad_like(tmp_path / "S2" / "S2.pkl"))
    assert w.corpus == "wesad" and w.source_fs == 700.0 and w.fs == 128.0 and w.data.shape == (12 * 128,)
    t = np.arange(256 * 12) / 256
    edf = write_edf(tmp_path / "rec.edf", ["Fz", "ECG L"], 256, 12,
                    fill=lambda i: 1000 * np.sin(2 * np.pi * 1.2 * t) if i else np.zeros_like(t))
    e = corpora.load_ecg(edf)
    assert e.channel == "ECG L" and e.corpus == "edf" and e.data.shape == (12 * 128,)
    assert np.abs(e.data).max() == pytest.approx(1.0, rel=0.01)  # 1000 uV = 1 mV
    assert corpora.find_ecg_recordings(tmp_path) == [tmp_path / "S2" / "S2.pkl", edf]
    slow = write_edf(tmp_path / "slow.edf", ["ECG"], 100, 12)
    with pytest.raises(CorpusFormatError, match=r"slow.edf: ECG channel ECG is sampled at 100 Hz; expected at least 128"):
        corpora.load_ecg(slow)


def test_load_ecg_real_bdf_without_ecg(realdata):
    bdf = realdata / "biosemi_bdf" / "Newtest17-256.bdf"
    assert corpora.ecg_channels(bdf) == []
    with pytest.raises(CorpusFormatError, match=r"Newtest17-256.bdf: no ECG channel"):
        corpora.load_ecg(bdf)
