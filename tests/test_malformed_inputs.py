"""Issue 9.3: a table of malformed inputs at every entry point, each with a clear error.

Every case states the entry point, the bad input, the exception class and the words that must
appear in the message (the file, subject, modality or argument it is about). Cases that go
through a store (the windows cache of the pipeline, the results folder of the CLI) also check
that nothing was written there. The CLI cases run ``python -m experiments`` in a subprocess and
check the one error policy of :mod:`experiments.errors`: one ``error: ...`` line on stderr, exit
status 2, no traceback.
"""
from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attx_keras.data.wesad import UnsafePickleError, WesadFormatError, find_subjects, read_subject
from attx_keras.pipeline import PipelineInputError, PipelineParams, load_subject_windows, preprocess_arrays
from attx_keras.pipeline import windows_for_inference
from preprocessing.filters import butter_bandpass, butter_lowpass
from preprocessing.normalize import zscore
from preprocessing.resample import resample
from preprocessing.spectral import relative_band_power, welch_psd
from preprocessing.windows import sliding_windows, window_labels

REPO = Path(__file__).resolve().parents[1]
#: TensorFlow's C++ start-up log lines (absl), printed on import whatever TF_CPP_MIN_LOG_LEVEL says;
#: they are not the CLI's output, so the one-line check ignores them
TF_NATIVE_LOG = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] |WARNING: All log messages before absl)")


class Payload:
    """Unpickling this runs ``touch <marker>`` (if the unpickler let it)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _chest(d):
    return d["signal"]["chest"]


def _set_chest(key, fn):
    return lambda d: _chest(d).__setitem__(key, fn(_chest(d)[key]))


def _nan_run(a):
    a = a.copy()
    a[7000:7700] = np.nan
    return a


# --------------------------------------------------------------------------------------------
# 1. The WESAD reader, through load_subject_windows with a cache folder (nothing may be cached)
# --------------------------------------------------------------------------------------------
# (case id, how to break a good subject dict or its bytes, exception, regex the message must match)
FILE_CASES = [
    ("truncated-pickle", ("bytes", lambda b: b[:1000]), WesadFormatError, r"not a readable pickle"),
    ("empty-file", ("bytes", lambda b: b""), WesadFormatError, r"not a readable pickle"),
    ("text-not-pickle", ("bytes", lambda b: b"subject,ecg\nS2,0.1\n"), WesadFormatError, r"not a readable pickle"),
    ("malicious-os-system", ("payload", None), UnsafePickleError, r"refused to load global '(posix|os)\.system'"),
    ("malicious-eval", ("bytes", lambda b: b"cbuiltins\neval\n(S'1+1'\ntR."), UnsafePickleError,
     r"refused to load global 'builtins\.eval'"),
    ("top-level-list", ("obj", lambda d: [d]), WesadFormatError, r"top level is a list, expected a dict"),
    ("missing-label", ("mutate", lambda d: d.pop("label")), WesadFormatError, r"missing key top level\['label'\]"),
    ("missing-signal", ("mutate", lambda d: d.pop("signal")), WesadFormatError, r"missing key top level\['signal'\]"),
    ("signal-not-dict", ("mutate", lambda d: d.__setitem__("signal", [1, 2])), WesadFormatError,
     r"\['signal'\] is a list, expected a dict"),
    ("missing-chest-eda", ("mutate", lambda d: _chest(d).pop("EDA")), WesadFormatError,
     r"missing key \['signal'\]\['chest'\]\['EDA'\]"),
    ("ecg-strings", ("mutate", _set_chest("ECG", lambda a: a.astype(str))), WesadFormatError,
     r"\['ECG'\] has dtype <U\d+, expected numbers"),
    ("acc-two-axes", ("mutate", _set_chest("ACC", lambda a: a[:, :2])), WesadFormatError,
     r"\['ACC'\] has shape \(\d+, 2\), expected \(N, 3\)"),
    ("ecg-3d", ("mutate", _set_chest("ECG", lambda a: a[:, :, None])), WesadFormatError,
     r"\['ECG'\] has shape \(\d+, 1, 1\), expected \(N, 1\)"),
    ("eda-nan-run", ("mutate", _set_chest("EDA", _nan_run)), WesadFormatError,
     r"\['EDA'\] contains 700 NaN/inf sample\(s\), first at sample 7000 \(10.0 s"),
    ("ecg-inf", ("mutate", _set_chest("ECG", lambda a: np.where(np.arange(len(a))[:, None] == 42, np.inf, a))),
     WesadFormatError, r"\['ECG'\] contains 1 NaN/inf sample\(s\), first at sample 42"),
    ("unknown-label-code", ("mutate", lambda d: d["label"].__setitem__(slice(0, 10), 9)), WesadFormatError,
     r"unknown code\(s\) \[9\]"),
    ("fractional-labels", ("mutate", lambda d: d.__setitem__("label", d["label"] + 0.5)), WesadFormatError,
     r"'label' has dtype float64, expected integer codes"),
    ("label-2d", ("mutate", lambda d: d.__setitem__("label", d["label"][:, None])), WesadFormatError,
     r"'label' has shape \(\d+, 1\), expected \(N,\)"),
    ("label-shorter-than-signals", ("mutate", lambda d: d.__setitem__("label", d["label"][:-3500])),
     WesadFormatError, r"has \d+ samples, expected \d+ \(the length of 'label'\)"),
    ("too-short", ("obj", lambda d: {"label": np.ones(3500, np.int32), "signal": {"chest": {
        k: np.zeros((3500, c)) for k, c in (("ACC", 3), ("ECG", 1), ("EMG", 1), ("EDA", 1), ("Temp", 1), ("Resp", 1))}}}),
     WesadFormatError, r"recording is 5.0 s long, expected at least 10 s"),
    ("flat-chest-eda", ("mutate", _set_chest("EDA", lambda a: np.full_like(a, 0.4))), PipelineInputError,
     r"subject S2: chest EDA: constant signal \(standard deviation 0"),
    ("no-usable-condition", ("mutate", lambda d: d["label"].__setitem__(slice(None), 4)), WesadFormatError,
     r"subject S2: no 10-s window with a label in \[1, 2, 3\]"),
]


@pytest.fixture()
def good_dict(wesad_root):
    with open(wesad_root / "S2" / "S2.pkl", "rb") as fh:
        return pickle.load(fh, encoding="latin1")


@pytest.mark.parametrize("case,breaker,exc,match", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_malformed_subject_file(case, breaker, exc, match, good_dict, wesad_root, tmp_path):
    kind, fn = breaker
    path = tmp_path / "root" / "S2" / "S2.pkl"
    path.parent.mkdir(parents=True)
    marker = tmp_path / "pwned"
    if kind == "bytes":
        path.write_bytes(fn((wesad_root / "S2" / "S2.pkl").read_bytes()))
    elif kind == "payload":
        path.write_bytes(pickle.dumps({"label": Payload(marker), "signal": {}}, protocol=2))
    else:
        obj = fn(good_dict) if kind == "obj" else good_dict
        if kind == "mutate":
            fn(obj)
        path.write_bytes(pickle.dumps(obj, protocol=2))
    cache = tmp_path / "cache"
    with pytest.raises(exc, match=match) as err:
        load_subject_windows(path, PipelineParams(), cache)
    message = str(err.value)
    assert str(path) in message or "subject S2" in message, message  # names the file or the subject
    assert not marker.exists(), "the pickle's payload ran"
    assert not list(cache.rglob("*.npz")), "windows of a bad file were cached"


# --------------------------------------------------------------------------------------------
# 2. Folders: the WESAD root (find_subjects, and read_subject on a folder)
# --------------------------------------------------------------------------------------------
def _file_as_root(tmp):
    (tmp / "root").write_text("not a folder")
    return tmp / "root"


def _empty_root(tmp):
    (tmp / "root").mkdir()
    return tmp / "root"


def _file_as_subject_folder(tmp):
    (tmp / "root").mkdir()
    (tmp / "root" / "S2").write_text("a file where the folder S2/ is expected")
    return tmp / "root"


FOLDER_CASES = [
    ("root-is-a-file", _file_as_root, FileNotFoundError, r"root: WESAD root folder not found"),
    ("empty-root", _empty_root, FileNotFoundError, r"root: no WESAD subject pickles found \(expected e\.g\. .*S2\.pkl\)"),
    ("subject-folder-is-a-file", _file_as_subject_folder, FileNotFoundError, r"root: no WESAD subject pickles"),
]


@pytest.mark.parametrize("case,make,exc,match", FOLDER_CASES, ids=[c[0] for c in FOLDER_CASES])
def test_malformed_root(case, make, exc, match, tmp_path):
    root = make(tmp_path)
    with pytest.raises(exc, match=match):
        find_subjects(root)


def test_pickle_path_is_a_folder(tmp_path):
    path = tmp_path / "S2" / "S2.pkl"
    path.mkdir(parents=True)  # a folder where the file is expected
    with pytest.raises(FileNotFoundError, match=r"S2\.pkl: WESAD subject file not found"):
        read_subject(path)


# --------------------------------------------------------------------------------------------
# 3. The pipeline on arrays (preprocess_arrays, windows_for_inference)
# --------------------------------------------------------------------------------------------
N = 700 * 30
RNG = np.random.default_rng(0)
ECG, EDA, LAB = RNG.normal(size=N), 2 + RNG.normal(size=N) * 0.1, np.ones(N, np.int64)


def _pipe(ecg=ECG, eda=EDA, labels=LAB, fs=700.0):
    return lambda: preprocess_arrays(ecg, eda, labels, PipelineParams(), subject="S5", fs=fs)


def _infer(ecg=ECG, fs_ecg=700, eda=EDA, fs_eda=700):
    return lambda: windows_for_inference(ecg, fs_ecg, eda, fs_eda, name="rec.csv")


ARRAY_CASES = [
    ("flat-eda", _pipe(eda=np.full(N, 3.0)), r"subject S5: chest EDA: constant signal \(standard deviation 0"),
    ("flat-ecg", _pipe(ecg=np.zeros(N)), r"subject S5: chest ECG: constant signal"),
    ("labels-shorter", _pipe(labels=LAB[:-700]), r"subject S5: chest ECG: 21000 samples \(expected 20300, the length"),
    ("ecg-two-channels", _pipe(ecg=np.stack([ECG, ECG], 1)), r"subject S5: chest ECG: shape \(21000, 2\) \(expected a 1-D"),
    ("wrong-rate", _pipe(fs=512.0), r"subject S5: sampling rate: 512.0 Hz \(expected 700 Hz"),
    ("label-code-9", _pipe(labels=np.where(np.arange(N) < 5, 9, LAB)), r"subject S5: labels: unknown code\(s\) \[9\]"),
    ("fractional-labels", _pipe(labels=LAB + 0.5), r"subject S5: labels: dtype float64 \(expected integer"),
    ("string-labels", _pipe(labels=LAB.astype(str)), r"subject S5: labels: dtype <U21 \(expected integer"),
    ("ecg-nan-run", _pipe(ecg=np.where((np.arange(N) >= 700) & (np.arange(N) < 1400), np.nan, ECG)),
     r"subject S5: chest ECG: 700 NaN/inf sample\(s\), first at sample 700"),
    ("eda-object-dtype", _pipe(eda=np.array([None] * N)), r"subject S5: chest EDA: dtype object"),
    ("inference-bad-rate", _infer(fs_eda=0), r"rec\.csv: fs_eda: 0 \(expected a positive sampling rate"),
    ("inference-too-short", _infer(eda=EDA[:3500]), r"rec\.csv: 5\.0 s of ECG and EDA together \(expected at least one 10-s"),
    ("inference-ecg-rate-too-low", _infer(fs_ecg=20, ecg=ECG[:2000]), r"rec\.csv: ECG: sampling rate 20 Hz \(expected above 30 Hz"),
    ("inference-flat-eda", _infer(eda=np.ones(N)), r"rec\.csv: EDA: constant signal"),
]


@pytest.mark.parametrize("case,call,match", ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES])
def test_malformed_arrays(case, call, match):
    with pytest.raises(PipelineInputError, match=match):
        call()


# --------------------------------------------------------------------------------------------
# 4. The preprocessing functions (messages name the argument)
# --------------------------------------------------------------------------------------------
SIG = RNG.normal(size=2000)
FUNCTION_CASES = [
    ("bandpass-above-nyquist", lambda: butter_bandpass(SIG, 5, 400, 700), r"high: cut-off 400 Hz is at or above the Nyquist frequency 350.0 Hz"),
    ("bandpass-low-above-high", lambda: butter_bandpass(SIG, 15, 5, 700), r"low \(15.0 Hz\) must be below high"),
    ("lowpass-too-short", lambda: butter_lowpass(SIG[:10], 3, 700), r"x: 10 samples along axis 0 is too short"),
    ("lowpass-negative-rate", lambda: butter_lowpass(SIG, 3, -700), r"fs: expected a positive sampling rate in Hz, got -700"),
    ("resample-zero-rate", lambda: resample(SIG, 0, 256), r"fs_in: expected a positive sampling rate in Hz, got 0"),
    ("resample-nan", lambda: resample(np.r_[SIG, np.nan], 700, 256), r"x: contains 1 NaN/inf value\(s\) \(first at index \(2000,\)\)"),
    ("zscore-flat", lambda: zscore(np.ones(100)), r"x: constant signal \(standard deviation 0\)"),
    ("zscore-empty", lambda: zscore(np.array([])), r"x: expected a non-empty array"),
    ("zscore-strings", lambda: zscore(np.array(["a", "b"])), r"x: expected a numeric array, got dtype <U1"),
    ("windows-size-zero", lambda: sliding_windows(SIG, 0, 10), r"size: expected a positive integer, got 0"),
    ("windows-longer-than-signal", lambda: sliding_windows(SIG, 5000, 10), r"x: 2000 samples along axis 0 is shorter than one window"),
    ("window-labels-bad-rule", lambda: window_labels(np.ones(100, int), 10, 5, rule="mode"), r"rule: expected one of"),
    ("welch-inf", lambda: welch_psd(np.r_[SIG, np.inf], 256), r"x: contains 1 NaN/inf"),
    ("band-power-bad-band", lambda: relative_band_power(SIG, 256, {"alpha": (12, 8)}), r"alpha"),
]


@pytest.mark.parametrize("case,call,match", FUNCTION_CASES, ids=[c[0] for c in FUNCTION_CASES])
def test_malformed_function_arguments(case, call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------------------------
# 5. The CLI: one line on stderr, exit 2, no traceback, nothing in the results folder
# --------------------------------------------------------------------------------------------
def _copy_root(wesad_root, tmp, breaker=None):
    root = tmp / "data"
    shutil.copytree(wesad_root, root)
    if breaker is not None:
        breaker(root / "S2" / "S2.pkl")
    return root


CLI_CASES = [
    # (case id, extra argv (with {root} / {tmp} placeholders), how to build the data root, words in the error line)
    ("data-root-is-a-file", ["--data-root", "{tmp}/file.txt"], "file", ["file.txt"]),
    ("data-root-empty", ["--data-root", "{tmp}/empty"], "empty", ["empty", "no WESAD subject pickles"]),
    ("truncated-pickle", ["--data-root", "{root}"], lambda p: p.write_bytes(p.read_bytes()[:500]),
     ["S2.pkl", "not a readable pickle"]),
    ("malicious-pickle", ["--data-root", "{root}"],
     lambda p: p.write_bytes(pickle.dumps({"label": Payload(p.parent / "pwned"), "signal": {}}, protocol=2)),
     ["S2.pkl", "refused to load global"]),
    ("jobs-zero", ["--jobs", "0"], None, ["--jobs", "0"]),
    ("profile-huge", ["--profile", "huge"], None, ["huge"]),
    ("backend-nope", ["--backend", "nope"], None, ["--backend", "nope"]),
    ("rows-nosuch", ["--rows", "nosuch"], None, ["nosuch"]),
]


@pytest.mark.parametrize("case,extra,data,words", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_malformed_input(case, extra, data, words, wesad_root, tmp_path):
    root = None
    if data == "file":
        (tmp_path / "file.txt").write_text("not a folder")
    elif data == "empty":
        (tmp_path / "empty").mkdir()
    elif callable(data):
        root = _copy_root(wesad_root, tmp_path, data)
    argv = [a.replace("{root}", str(root)).replace("{tmp}", str(tmp_path)) for a in extra]
    results = tmp_path / "results"
    env = dict(os.environ, PHYSIO_FUSION_CACHE=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="3",
               WESAD_ROOT="")
    proc = subprocess.run([sys.executable, "-m", "experiments", "run", "table1", "--profile", "smoke",
                           "--results", str(results), *argv],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not TF_NATIVE_LOG.match(ln)]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    written = [p for p in results.rglob("*") if p.is_file()] if results.exists() else []
    assert not written, f"written to the results store: {written}"
    if root is not None:
        assert not (root / "S2" / "pwned").exists(), "the pickle's payload ran"
