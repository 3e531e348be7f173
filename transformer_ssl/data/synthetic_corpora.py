"""Synthetic copies of the three EEG pretraining corpora, in their distributed on-disk formats.

* eegmmidb: ``S<NNN>/S<NNN>R<NN>.edf``, EDF+ written with pyedflib: the 64 EEG channels with the
  real dot-padded labels (``Fc5.`` ... ``Iz..``) in the real order, uV, physical and digital range
  +-8092, 1-s records at 160 Hz (subject 88 at 128 Hz, as its real runs), and T0 annotations.
* WAY-EEG-GAL: ``P<X>/HS_P<X>_S<Y>.mat`` (MAT v5, scipy.io.savemat): struct ``hs`` with
  ``hs.name``, ``hs.eeg.sig`` (samples, 32) float64 uV, ``hs.eeg.names`` (the 32 BrainAmp cap
  names), ``hs.eeg.samplingrate`` = 500.
* Large-EEG-BCI (Kaya 2018): ``<name>.mat`` with struct ``o``: ``id``, ``tag``, ``nS``,
  ``sampFreq`` (200, or 1000 for the ``-HFREQ`` file), ``marker`` (nS,) uint8, ``data`` (nS, 22)
  float64 uV, ``chnames`` (Fp1 Fp2 F3 F4 C3 C4 P3 P4 O1 O2 A1 A2 F7 F8 T3 T4 T5 T6 Fz Cz Pz X5);
  the sync channel X5 holds a 1-Hz pulse train.

EEG: :func:`transformer_ssl.data.synthetic.simulate_eeg` (1/f background, occipital alpha at the
subject's own peak frequency, fronto-central beta; per-subject amplitudes, exponents, noise), one
parameter set per synthetic subject. No emotion effect: these corpora are unlabeled.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from experiments.store import atomic_write_bytes
from transformer_ssl.data.synthetic import GENERATOR_VERSION, eeg_subject_params, simulate_eeg

EEGMMIDB_LABELS: tuple[str, ...] = (
    "Fc5.", "Fc3.", "Fc1.", "Fcz.", "Fc2.", "Fc4.", "Fc6.", "C5..", "C3..", "C1..", "Cz..", "C2..", "C4..",
    "C6..", "Cp5.", "Cp3.", "Cp1.", "Cpz.", "Cp2.", "Cp4.", "Cp6.", "Fp1.", "Fpz.", "Fp2.", "Af7.", "Af3.",
    "Afz.", "Af4.", "Af8.", "F7..", "F5..", "F3..", "F1..", "Fz..", "F2..", "F4..", "F6..", "F8..", "Ft7.",
    "Ft8.", "T7..", "T8..", "T9..", "T10.", "Tp7.", "Tp8.", "P7..", "P5..", "P3..", "P1..", "Pz..", "P2..",
    "P4..", "P6..", "P8..", "Po7.", "Po3.", "Poz.", "Po4.", "Po8.", "O1..", "Oz..", "O2..", "Iz..")
#: Subject 88's runs are at 128 Hz in the real eegmmidb; every other subject at 160 Hz.
EEGMMIDB_128HZ_SUBJECTS = (88,)
WAY_NAMES: tuple[str, ...] = (
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "Cz", "C4", "T8", "TP9",
    "CP5", "CP1", "CP2", "CP6", "TP10", "P7", "P3", "Pz", "P4", "P8", "PO9", "O1", "Oz", "O2", "PO10")
KAYA_NAMES: tuple[str, ...] = ("Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "A1", "A2", "F7", "F8",
                               "T3", "T4", "T5", "T6", "Fz", "Cz", "Pz", "X5")
KAYA_FILES: tuple[tuple[str, float], ...] = (("CLASubjectA1601083StLRHand.mat", 200.0),
                                             ("5F-SubjectC-151204-5St-SGLHand-HFREQ.mat", 1000.0),
                                             ("HaLT-SubjectB-160223-6St-LRHandLegTongue.mat", 200.0),
                                             ("NoMT-SubjectE-160415-1St-Nothing.mat", 200.0))
PHYS_RANGE = 8092


def _rng(seed: int, corpus: int, k: int) -> np.random.Generator:
    return np.random.default_rng([seed, 104729, corpus, k])


def write_eegmmidb_run(path, subject: int, seconds: float, seed: int = 0) -> Path:
    """One eegmmidb-format EDF+ run (64 channels, 160 Hz or 128 Hz for subject 88)."""
    import pyedflib

    rng = _rng(seed, 1, subject)
    fs = 128 if subject in EEGMMIDB_128HZ_SUBJECTS else 160
    n = int(round(seconds)) * fs  # whole 1-s records
    eeg = simulate_eeg(EEGMMIDB_LABELS, n, fs, eeg_subject_params(rng), rng)
    eeg = np.clip(np.round(eeg), -PHYS_RANGE, PHYS_RANGE)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    writer = pyedflib.EdfWriter(str(tmp), len(EEGMMIDB_LABELS), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setPatientCode("X")
        writer.setEquipment("BCI2000")
        writer.setSignalHeaders([dict(label=lab, dimension="uV", sample_frequency=fs, physical_max=PHYS_RANGE,
                                      physical_min=-PHYS_RANGE, digital_max=PHYS_RANGE, digital_min=-PHYS_RANGE,
                                      transducer="", prefilter="HP:0Hz LP:0Hz") for lab in EEGMMIDB_LABELS])
        writer.writeSamples([np.ascontiguousarray(row) for row in eeg])
        writer.writeAnnotation(0.0, float(n / fs), "T0")
    finally:
        writer.close()
    tmp.replace(path)
    return path


def _savemat(path, variables: dict) -> Path:
    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, variables, format="5", do_compression=False)
    return atomic_write_bytes(path, buf.getvalue())


def _cell(names) -> np.ndarray:
    cell = np.empty((1, len(names)), dtype=object)
    for i, nm in enumerate(names):
        cell[0, i] = nm
    return cell


def write_way_series(path, participant: int, series: int, seconds: float, seed: int = 0) -> Path:
    """One WAY-EEG-GAL ``HS_P<X>_S<Y>.mat`` (struct hs, 32 channels at 500 Hz, uV)."""
    rng = _rng(seed, 2, participant)
    fs = 500
    n = int(round(seconds * fs))
    sig = simulate_eeg(WAY_NAMES, n, fs, eeg_subject_params(rng), np.random.default_rng([seed, 2, participant, series]))
    hs = {"name": f"P{participant}", "participant": float(participant), "series": float(series),
          "eeg": {"sig": np.ascontiguousarray(sig.T), "names": _cell(WAY_NAMES), "samplingrate": float(fs)}}
    return _savemat(path, {"hs": hs})


def write_kaya_file(path, subject_index: int, fs: float, seconds: float, seed: int = 0) -> Path:
    """One Large-EEG-BCI file (struct o, 22 channels incl. the X5 sync channel, uV)."""
    rng = _rng(seed, 3, subject_index)
    n = int(round(seconds * fs))
    eeg = simulate_eeg(KAYA_NAMES[:-1], n, fs, eeg_subject_params(rng), rng)
    sync = np.where((np.arange(n) % int(fs)) < int(0.01 * fs) + 1, 50.0, 0.0)
    marker = np.zeros(n, dtype=np.uint8)
    marker[np.arange(int(2 * fs), n, int(3 * fs))] = rng.integers(1, 4, size=len(range(int(2 * fs), n, int(3 * fs))))
    o = {"id": Path(path).stem, "tag": "synthetic", "nS": float(n), "sampFreq": float(fs), "marker": marker[:, None],
         "data": np.ascontiguousarray(np.column_stack([eeg.T, sync])), "chnames": _cell(KAYA_NAMES)}
    return _savemat(path, {"o": o})


def write_synthetic_corpora(root, seconds: float = 60.0, n_per_corpus: int = 2, seed: int = 0,
                            overwrite: bool = False) -> list[Path]:
    """Write ``n_per_corpus`` recordings of ``seconds`` s per corpus under ``root``:

    eegmmidb subjects 1, 88 (128 Hz), 2, 3 ... (run R01 each); WAY-EEG-GAL participants 1, 2 ...
    (series 1); Kaya files from :data:`KAYA_FILES` (200 Hz, 1000 Hz, ...). Existing files are kept
    unless ``overwrite``. Returns the paths.
    """
    if (isinstance(n_per_corpus, bool) or not isinstance(n_per_corpus, (int, np.integer))
            or not 1 <= n_per_corpus <= len(KAYA_FILES)):
        raise ValueError(f"n_per_corpus: expected an integer 1-{len(KAYA_FILES)}, got {n_per_corpus!r}")
    if not seconds >= 10:
        raise ValueError(f"seconds: expected at least 10 s per recording, got {seconds!r}")
    root = Path(root)
    subjects = ([1, 88] + list(range(2, 10)))[:n_per_corpus]
    jobs = []
    for s in subjects:
        jobs.append((root / "eegmmidb" / f"S{s:03d}" / f"S{s:03d}R01.edf",
                     lambda p, s=s: write_eegmmidb_run(p, s, seconds, seed)))
    for k in range(1, n_per_corpus + 1):
        jobs.append((root / "WAY-EEG-GAL" / f"P{k}" / f"HS_P{k}_S1.mat",
                     lambda p, k=k: write_way_series(p, k, 1, seconds, seed)))
    for k, (name, fs) in enumerate(KAYA_FILES[:n_per_corpus]):
        jobs.append((root / "Large-EEG-BCI" / name, lambda p, k=k, fs=fs: write_kaya_file(p, k, fs, seconds, seed)))
    out = []
    for path, write in jobs:
        if overwrite or not path.exists():
            write(path)
        out.append(path)
    return out


def ensure_synthetic_corpora(cache_dir, seconds: float = 60.0, n_per_corpus: int = 2, seed: int = 0) -> Path:
    """The synthetic corpus root for these sizes inside ``cache_dir`` (written on first use); its folder
    name carries :data:`GENERATOR_VERSION`. Returns the root."""
    root = Path(cache_dir) / f"synthetic-eeg-corpora-g{GENERATOR_VERSION}-n{n_per_corpus}-t{seconds:g}-s{seed}"
    write_synthetic_corpora(root, seconds=seconds, n_per_corpus=n_per_corpus, seed=seed)
    return root
