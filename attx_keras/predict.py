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

Signal file formats (``--format auto`` picks by content): opensignals, simple, e4 and csv, read by
:mod:`attx_keras.data.signal_files` (its docstring describes each). Rates: a file that states its
rate is read at that rate; ``--fs-ecg`` / ``--fs-eda`` must then agree with it (a mismatch is an
error, not a guess).

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
import sys
from pathlib import Path

import numpy as np

from attx_keras.data.signal_files import FORMATS, SignalFile, SignalFileError, read_signal_file, resolve_rate
from attx_keras.pipeline import PipelineParams, preprocess_arrays, windows_for_inference
from attx_keras.task import CLASS_NAMES
from experiments.errors import CliParser, UserInputError, format_error, run_cli
from experiments.store import atomic_write_text, read_model_metadata


def _fail(where, found, expected):
    raise SignalFileError(format_error(where, found, expected))


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
