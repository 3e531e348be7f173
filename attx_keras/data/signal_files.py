"""Readers of one signal column from a wearable's text/CSV export (the ``--ecg`` / ``--eda`` files of
:mod:`attx_keras.predict`).

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

Errors: a missing file is ``FileNotFoundError``; anything malformed is :class:`SignalFileError` (a
``ValueError``) naming the file, the line and what was expected.

    >>> sig = read_signal_file("ecg.txt", "ECG")        # doctest: +SKIP
    >>> sig.values.shape, sig.fs, sig.format
    ((60000,), 1000.0, 'simple')
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.errors import UserInputError, format_error

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
