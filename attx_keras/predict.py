"""Per-window stress probabilities from a trained AttX (or baseline) model, preprocessed as in training.

::

    python -m attx_keras.predict MODEL.keras --wesad S5.pkl [--out S5.csv]
    python -m attx_keras.predict MODEL.keras --ecg ecg.txt --eda eda.txt [--fs-ecg 1000 --fs-eda 1000] [--out p.csv]

``MODEL.keras``: a model saved by ``python -m experiments run table1 --save-models`` (one per fold,
beside its record) or by ``model.save``; its inputs are named ``ecg`` and/or ``eda`` and take
(2560, 1) windows (10 s at 256 Hz); its output is the softmax over (non-stress, stress).

Input
    ``--wesad FILE``  a WESAD subject pickle (read with the restricted unpickler). Windows are the
                      training windows exactly (:func:`attx_keras.pipeline.preprocess_arrays`: only
                      baseline, stress and amusement segments), so the output has the true label.
    ``--ecg FILE --eda FILE``  one recording's ECG and EDA, each in its own file and at its own rate,
                      preprocessed by :func:`attx_keras.pipeline.windows_for_inference` (filter,
                      per-recording z-score, resample to 256 Hz, 10-s windows every 5 s over the
                      common duration). Units do not matter (the z-score removes any linear scale:
                      raw ADC counts, mV and uS give the same windows).

Signal file formats (``--format auto`` picks by content):

==============  ====================================================================================
opensignals     PLUX OpenSignals text: ``# OpenSignals Text File Format``, a ``# {JSON}`` header line
                (``"sampling rate"``, ``"column"``, ``"label"``, ``"sensor"``), ``# EndOfHeader``,
                tab-separated columns (nSeq, digital I/O, analog A1..An).
simple          BioSPPy / PLUX "Simple Text Format": ``# Sampling Rate (Hz):= 1000.00``,
                ``# Labels:= ECG`` header lines, then one value (or column) per line.
e4              Empatica E4 CSV (as in WESAD's E4 export): row 1 the unix start time, row 2 the rate
                in Hz (one entry per column), then the samples.
csv             plain text / CSV columns (comma, semicolon, tab or spaces), with or without a header
                row of names; no rate inside, so ``--fs-ecg`` / ``--fs-eda`` are required.
==============  ====================================================================================

Rates: a file that states its rate is read at that rate; ``--fs-ecg`` / ``--fs-eda`` must then
agree with it (a mismatch is an error, not a guess). Columns: ``--ecg-column`` / ``--eda-column``
take a column name, an OpenSignals label / sensor / column name (``A1``), or a 0-based index; by
default a file with one signal column uses it, an OpenSignals file its channel whose sensor or label
names the modality.

Training subjects: a model saved by ``--save-models`` carries what it was trained for (task, row,
fold, held-out subject and the training subjects; see :mod:`experiments.runner`). The first line
printed names them. When ``--wesad`` reads one of its training subjects, a ``warning:`` line on
stderr (and a ``#`` line in the output) says that these predictions are not a held-out estimate.

Output (printed, and written with ``--out FILE.csv``): one row per window with ``window``,
``start_s``, ``end_s`` (seconds from the first common sample), ``p_stress`` (softmax probability of
stress), ``predicted`` (``stress`` when ``p_stress >= 0.5``, as the argmax in training) and, for
WESAD input, ``label_code`` and ``label``. Errors follow :mod:`experiments.errors`: one line on
stderr, exit status 2 (``--debug`` shows the traceback).
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attx_keras.pipeline import PipelineParams, preprocess_arrays, windows_for_inference
from attx_keras.task import CLASS_NAMES
from experiments.errors import CliParser, UserInputError, format_error, run_cli
from experiments.store import atomic_write_text, read_model_metadata

log = logging.getLogger(__name__)

FORMATS = ("auto", "opensignals", "simple", "e4", "csv")
E4_MIN_START = 1e8  # a unix time after 1973: the first row of an Empatica E4 CSV


class SignalFileError(UserInputError):
    """A signal file is not in a format this module reads, or not what was asked of it."""


def _fail(where, found, expected):
    raise SignalFileError(format_error(where, found, expected))


# ------------------------------------------------------------------------------------------- readers
@dataclass(frozen=True)
class SignalFile:
    """One column of a signal file: ``values`` (N,) float64, ``fs`` in Hz (None if the file has
    none), ``column`` (the name used), ``format`` (one of :data:`FORMATS` but ``auto``)."""

    path: str
    values: np.ndarray
    fs: float | None
    column: str
    format: str


def _sniff(path: Path, head: list[str]) -> str:
    first = head[0].strip() if head else ""
    if first.startswith("# OpenSignals"):
        return "opensignals"
    if first.startswith("#") and any(":=" in line for line in head[:10]):
        return "simple"
    if len(head) >= 3:
        try:
            row1 = [float(v) for v in head[0].replace(";", ",").split(",") if v.strip()]
            row2 = [float(v) for v in head[1].replace(";", ",").split(",") if v.strip()]
        except ValueError:
            return "csv"
        if (row1 and len(row1) == len(row2) and min(row1) >= E4_MIN_START and len(set(row1)) == 1
                and all(0 < r <= 10_000 for r in row2)):
            return "e4"
    return "csv"


def _numeric_table(path: Path, text: str, first_line: int, names=None, sep=None):
    """Parse ``text`` (the data lines of ``path``, starting at 1-based line ``first_line``) as numbers."""
    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep if sep else r"[,;\t ]+", engine="python", header=None,
                            names=names, skip_blank_lines=True, comment=None, dtype=str)
    except pd.errors.ParserError as err:
        _fail(path, f"unparseable table ({' '.join(str(err).split())})", "rows of equally many numeric columns")
    except pd.errors.EmptyDataError:
        _fail(path, "no samples after the header", "at least one row of numbers")
    if frame.empty:
        _fail(path, "no samples after the header", "at least one row of numbers")
    frame = frame.dropna(axis=1, how="all")
    numeric = frame.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() & frame.notna()
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        name = str(frame.columns[col])
        _fail(path, f"non-numeric value {frame.iat[row, col]!r} in column {name} at line {first_line + row}",
              "numbers only below the header")
    return numeric


def _pick(path: Path, columns: list[str], want: str | None, modality: str, preferred: list[int] | None = None):
    if want is None:
        if preferred and len(preferred) == 1:
            return preferred[0]
        if len(columns) == 1:
            return 0
        _fail(path, f"{len(columns)} signal columns {columns}",
              f"one, or --{modality.lower()}-column naming one of them")
    if want in columns:
        return columns.index(want)
    if want.isdigit() and int(want) < len(columns):
        return int(want)
    _fail(f"{path}: --{modality.lower()}-column", repr(want), f"one of {columns} or an index 0..{len(columns) - 1}")


def _read_opensignals(path: Path, lines: list[str], column, modality):
    end = next((i for i, line in enumerate(lines) if line.strip().startswith("# EndOfHeader")), None)
    if end is None or end < 2:
        _fail(path, "no '# EndOfHeader' line after the JSON header", "the OpenSignals text layout")
    try:
        header = json.loads(lines[1].lstrip("#").strip())
    except json.JSONDecodeError as err:
        _fail(f"{path}: line 2", f"unreadable JSON header ({err.msg})", "the OpenSignals '# {...}' header")
    if not isinstance(header, dict) or len(header) != 1:
        _fail(f"{path}: header", f"{len(header) if isinstance(header, dict) else 'no'} device(s)",
              "exactly one device (export one device per file)")
    device = next(iter(header.values()))
    for key in ("sampling rate", "column"):
        if key not in device:
            _fail(f"{path}: header", f"no {key!r}", "the OpenSignals keys 'sampling rate' and 'column'")
    names = [str(c) for c in device["column"]]
    table = _numeric_table(path, "".join(lines[end + 1:]), end + 2, sep="\t")
    if table.shape[1] != len(names):
        _fail(path, f"{table.shape[1]} data columns", f"{len(names)}, as the header's 'column' lists")
    analog = [i for i, n in enumerate(names) if n.startswith("A")]
    labels = [str(v) for v in device.get("label", [])]
    sensors = [str(v) for v in device.get("sensor", [])]
    aliases = {}
    for k, i in enumerate(analog):
        for alias in (labels[k] if k < len(labels) else None, sensors[k] if k < len(sensors) else None):
            if alias:
                aliases.setdefault(alias, i)
    if column is not None and column in aliases:
        idx = aliases[column]
    elif column is not None:
        idx = _pick(path, names, column, modality)
    else:
        by_modality = sorted({i for a, i in aliases.items() if modality.lower() in a.lower()})
        idx = _pick(path, [names[i] for i in analog], None, modality,
                    [analog.index(i) for i in by_modality] or None)
        idx = analog[idx]
    return table.iloc[:, idx].to_numpy(np.float64), float(device["sampling rate"]), names[idx]


def _read_simple(path: Path, lines: list[str], column, modality):
    meta, first = {}, 0
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            first = i
            break
        key, sep, value = line.lstrip("#").partition(":=")
        if sep:
            meta[key.strip()] = value.strip()
    else:
        first = len(lines)
    rate = meta.get("Sampling Rate (Hz)")
    fs = None
    if rate is not None:
        try:
            fs = float(rate)
        except ValueError:
            _fail(f"{path}: header", f"sampling rate {rate!r}", "a number of Hz")
    names = [n.strip() for n in meta.get("Labels", "").replace(",", "\t").split("\t") if n.strip()]
    table = _numeric_table(path, "".join(lines[first:]), first + 1)
    if len(names) != table.shape[1]:
        names = [str(i) for i in range(table.shape[1])]
    idx = _pick(path, names, column, modality)
    return table.iloc[:, idx].to_numpy(np.float64), fs, names[idx]


def _read_e4(path: Path, lines: list[str], column, modality):
    table = _numeric_table(path, "".join(lines), 1)
    rates = table.iloc[1].to_numpy(np.float64)
    names = [str(i) for i in range(table.shape[1])]
    idx = _pick(path, names, column, modality)
    return table.iloc[2:, idx].to_numpy(np.float64), float(rates[idx]), names[idx]


def _read_csv(path: Path, lines: list[str], column, modality):
    import re

    first = 0
    while first < len(lines) and not lines[first].strip():
        first += 1
    if first == len(lines):
        _fail(path, "an empty file", "rows of numbers")
    cells = [c for c in re.split(r"[,;\t ]+", lines[first].strip()) if c]
    try:
        [float(c) for c in cells]
        names, start = [str(i) for i in range(len(cells))], first
    except ValueError:
        names, start = cells, first + 1  # a header row of names
    table = _numeric_table(path, "".join(lines[start:]), start + 1)
    if len(names) != table.shape[1]:
        _fail(path, f"{table.shape[1]} data columns under {len(names)} header names", "one name per column")
    idx = _pick(path, names, column, modality)
    return table.iloc[:, idx].to_numpy(np.float64), None, names[idx]


READERS = {"opensignals": _read_opensignals, "simple": _read_simple, "e4": _read_e4, "csv": _read_csv}


def read_signal_file(path, modality: str, column: str | None = None, fmt: str = "auto") -> SignalFile:
    """One signal column of a wearable's text/CSV export (formats in the module docstring).

    ``modality`` ("ECG" or "EDA") names the signal in errors and picks the OpenSignals channel.
    Raises ``FileNotFoundError`` for a missing file and :class:`SignalFileError` (a ``ValueError``
    naming the file, the line and what was expected) for anything malformed.
    """
    path = Path(path)
    if fmt not in FORMATS:
        _fail("--format", repr(fmt), f"one of {list(FORMATS)}")
    if not path.is_file():
        if path.exists():
            raise IsADirectoryError(21, "Is a directory", str(path))
        raise FileNotFoundError(2, "No such file or directory", str(path))
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except UnicodeDecodeError as err:
        _fail(path, f"bytes that are not UTF-8 text at byte {err.start}", "a text/CSV export")
    if not any(line.strip() for line in lines):
        _fail(path, "an empty file", "a text/CSV export with samples")
    kind = _sniff(path, lines[:12]) if fmt == "auto" else fmt
    values, fs, name = READERS[kind](path, lines, column, modality)
    return SignalFile(str(path), values, fs, name, kind)


def resolve_rate(sig: SignalFile, given: float | None, option: str) -> float:
    """The rate of ``sig``: the file's, checked against ``given`` (``--fs-ecg``/``--fs-eda``)."""
    if given is not None and (not np.isfinite(given) or given <= 0):
        _fail(option, repr(given), "a positive sampling rate in Hz")
    if sig.fs is None:
        if given is None:
            _fail(option, f"not given, and {sig.path} states no sampling rate", "the rate in Hz")
        return float(given)
    if given is not None and not np.isclose(given, sig.fs, rtol=1e-6):
        _fail(sig.path, f"sampling rate {sig.fs:g} Hz in the file, {option} {given:g}",
              "the same rate; omit the option to use the file's")
    return float(sig.fs)


# ------------------------------------------------------------------------------------------- model
def load_attx_model(path):
    """Load a ``.keras`` model with the AttX custom objects registered; checks its inputs and output."""
    import keras

    import attx_keras.layers  # noqa: F401  (registers AttX)
    import attx_keras.models  # noqa: F401  (registers any custom objects of the builders)

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    if path.suffix != ".keras":
        _fail(path, f"a {path.suffix or 'suffix-less'} file", "a .keras model file (model.save / --save-models)")
    try:
        model = keras.models.load_model(path)
    except (ValueError, OSError, KeyError) as err:
        _fail(path, f"not a loadable Keras model ({type(err).__name__}: {' '.join(str(err).split())[:200]})",
              "a .keras file saved by this package")
    window = PipelineParams().window
    names = [t.name for t in model.inputs]
    for t in model.inputs:
        if t.name not in ("ecg", "eda"):
            _fail(f"{path}: input {t.name!r}", "an unknown input", "inputs named 'ecg' and/or 'eda'")
        if tuple(t.shape[1:]) != (window, 1):
            _fail(f"{path}: input {t.name!r}", f"shape {tuple(t.shape[1:])}",
                  f"({window}, 1): {PipelineParams().window_s:g}-s windows at {PipelineParams().fs_out:g} Hz")
    if tuple(model.outputs[0].shape[1:]) != (len(CLASS_NAMES),):
        _fail(f"{path}: output", f"shape {tuple(model.outputs[0].shape[1:])}", f"({len(CLASS_NAMES)},) {CLASS_NAMES}")
    return model, names


# ------------------------------------------------------------------------------------------- predict
def predict_windows(model, names: list[str], ecg_w: np.ndarray, eda_w: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Stress probability (n,) of every window; ``ecg_w``/``eda_w`` (n, 2560, 1) float32."""
    inputs = {"ecg": ecg_w, "eda": eda_w}
    proba = model.predict({k: inputs[k] for k in names}, batch_size=batch_size, verbose=0)
    return np.asarray(proba, np.float64)[:, CLASS_NAMES.index("stress")]


def windows_from_files(ecg: SignalFile, fs_ecg: float, eda: SignalFile, fs_eda: float,
                       params: PipelineParams = PipelineParams()):
    """``(ecg_w, eda_w, start_s)`` of two signal files (:func:`attx_keras.pipeline.windows_for_inference`).

    Each signal is first checked on its own (the pipeline's check: 1-D, finite, not constant), so
    that an error names the one file at fault; the pipeline checks the pair (duration, rates).
    """
    from attx_keras.pipeline import check_signal  # the pipeline's own signal check, one wording

    check_signal(ecg.values, f"{ecg.path}: ECG")
    check_signal(eda.values, f"{eda.path}: EDA")
    name = ecg.path if ecg.path == eda.path else f"{ecg.path} + {eda.path}"
    return windows_for_inference(ecg.values, fs_ecg, eda.values, fs_eda, params, name=name)


def windows_from_wesad(path, params: PipelineParams = PipelineParams()):
    """``(ecg_w, eda_w, start_s, code, subject)``: the training windows of a WESAD pickle and its
    subject id (the pickle's ``subject`` key, else the file name: ``"S3"``)."""
    from attx_keras.data.wesad import read_subject

    s = read_subject(path)
    w = preprocess_arrays(s.ecg, s.eda, s.label, params, subject=str(path), fs=s.fs)
    return w.ecg, w.eda, w.start / params.fs_out, w.code, s.subject


def describe_model(path, meta: dict | None) -> str:
    """The ``# model:`` line: what the saved model was trained for (its ``physio_fusion.json``,
    written by ``--save-models``), or that it carries no such record."""
    if meta is None:
        return (f"# model {path}: no training record (not saved by --save-models); "
                "its training subjects are unknown")
    subjects = meta.get("train_subjects")
    trained = ", ".join(map(str, subjects)) if subjects else "unknown"
    return (f"# model {path}: {meta.get('task')}/{meta.get('profile')} row {meta.get('row')}, fold "
            f"{meta.get('fold')} (held out: {meta.get('test_subject') or meta.get('fold')}); "
            f"trained on subjects {trained}")


def training_subject_warning(meta: dict | None, subject: str, source) -> str | None:
    """A warning when ``subject`` (of the ``--wesad`` file ``source``) trained the model: its
    predictions are then not a held-out estimate. None when it did not, or when unknown."""
    subjects = [str(s) for s in (meta or {}).get("train_subjects") or ()]
    if str(subject) not in subjects:
        return None
    return (f"warning: {source}: subject {subject} is one of the model's training subjects ({', '.join(subjects)}): "
            f"these predictions are not a held-out estimate (use the model of fold {subject}, whose held-out "
            f"subject it is)")


def prediction_table(p_stress: np.ndarray, start_s: np.ndarray, params: PipelineParams = PipelineParams(),
                     code: np.ndarray | None = None):
    """The output table (pandas DataFrame), one row per window (columns in the module docstring)."""
    import pandas as pd

    from attx_keras.data.wesad import LABELS

    table = pd.DataFrame({"window": np.arange(p_stress.size), "start_s": np.round(start_s, 6),
                          "end_s": np.round(start_s + params.window_s, 6), "p_stress": p_stress,
                          "predicted": np.where(p_stress >= 0.5, "stress", "non-stress")})
    if code is not None:
        table["label_code"] = code
        table["label"] = [LABELS[int(c)] for c in code]
    return table


def main(argv=None) -> int:
    p = CliParser(prog="python -m attx_keras.predict", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a .keras model (e.g. from `python -m experiments run table1 --save-models`)")
    p.add_argument("--wesad", default=None, help="a WESAD subject pickle (S<k>.pkl)")
    p.add_argument("--ecg", default=None, help="ECG file (OpenSignals / Simple Text / E4 CSV / plain CSV)")
    p.add_argument("--eda", default=None, help="EDA file (same formats)")
    p.add_argument("--fs-ecg", type=float, default=None, help="ECG rate in Hz (required if the file states none)")
    p.add_argument("--fs-eda", type=float, default=None, help="EDA rate in Hz (required if the file states none)")
    p.add_argument("--ecg-column", default=None, help="column of the ECG file (name, label or 0-based index)")
    p.add_argument("--eda-column", default=None, help="column of the EDA file (name, label or 0-based index)")
    p.add_argument("--format", default="auto", choices=FORMATS, help="format of --ecg/--eda (default: by content)")
    p.add_argument("--out", default=None, help="also write the table to this CSV file")
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args(argv)
    if args.wesad is not None and (args.ecg or args.eda):
        raise UserInputError(format_error("--wesad", "given together with --ecg/--eda",
                                          "either --wesad or --ecg and --eda"))
    if args.wesad is None and not (args.ecg and args.eda):
        missing = "--ecg" if not args.ecg else "--eda"
        raise UserInputError(format_error(missing, "not given", "--wesad FILE, or both --ecg FILE and --eda FILE"))
    if args.batch_size < 1:
        raise UserInputError(format_error("--batch-size", args.batch_size, "a positive integer"))
    if args.out is not None and Path(args.out).suffix.lower() != ".csv":
        raise UserInputError(format_error("--out", repr(args.out), "a file name ending in .csv"))

    params = PipelineParams()
    code = None
    if args.wesad is not None:
        if not Path(args.wesad).is_file():
            raise FileNotFoundError(2, "No such file or directory", args.wesad)
        ecg_w, eda_w, start_s, code, subject = windows_from_wesad(args.wesad, params)
        source = args.wesad
    else:
        ecg = read_signal_file(args.ecg, "ECG", args.ecg_column, args.format)
        eda = read_signal_file(args.eda, "EDA", args.eda_column, args.format)
        fs_ecg = resolve_rate(ecg, args.fs_ecg, "--fs-ecg")
        fs_eda = resolve_rate(eda, args.fs_eda, "--fs-eda")
        ecg_w, eda_w, start_s = windows_from_files(ecg, fs_ecg, eda, fs_eda, params)
        source = (f"ECG {ecg.path} ({ecg.format}, column {ecg.column}, {fs_ecg:g} Hz), "
                  f"EDA {eda.path} ({eda.format}, column {eda.column}, {fs_eda:g} Hz)")
    model, names = load_attx_model(args.model)
    meta = read_model_metadata(args.model)
    table = prediction_table(predict_windows(model, names, ecg_w, eda_w, args.batch_size), start_s, params, code)
    print(describe_model(args.model, meta))
    print(f"# {args.model} on {source}: {len(table)} windows of {params.window_s:g} s")
    warning = training_subject_warning(meta, subject, args.wesad) if args.wesad is not None else None
    if warning:
        print(warning, file=sys.stderr, flush=True)
        print(f"# {warning}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.out is not None:
        path = atomic_write_text(args.out, table.to_csv(index=False, float_format="%.6f"))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
