"""MAHNOB-HCI EEG: BioSemi 24-bit BDF read with MNE, and the stimulus span from its Status channel.

Layout of an emotion-session BDF (``Part_<p>_S_Trial<k>_emotion.bdf``): 47 channels, 32 EEG in
BioSemi order (:data:`EEG_CHANNELS`, µV), then EXG1-8 (µV), GSR1, GSR2 (Ohm), Erg1, Erg2, Resp,
Temp and Status (:data:`MAHNOB_CHANNELS`); 256 Hz. The Status channel's low 16 bits carry the
trigger code (BioSemi, https://www.biosemi.com/faq/trigger_signals.htm; MNE keeps the low 17
bits); the upper bits are amplifier status and are masked off here (:data:`TRIGGER_MASK`).

Stimulus onset/offset: the trigger code changes when the stimulus starts and changes back when
it ends (MAHNOB: zero outside, non-zero while the clip plays). :func:`stimulus_bounds` takes the
first and the last change of the trigger code and cross-checks them against the protocol: 30 s
of recording before the onset, 30 s after the offset, and ``cutLenSec`` of session.xml between
them; a disagreement over ``tolerance_s`` (1 s) is a :class:`~rmmt.data.mahnob.MahnobFormatError`
naming the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rmmt.data.mahnob import MahnobFormatError

#: The 32 EEG electrodes in BioSemi (and MAHNOB-HCI file) order.
EEG_CHANNELS: tuple[str, ...] = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1", "Oz", "Pz",
    "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2", "P4", "P8", "PO4", "O2",
)
#: Channels after the EEG, in file order.
OTHER_CHANNELS: tuple[str, ...] = (
    "EXG1", "EXG2", "EXG3", "EXG4", "EXG5", "EXG6", "EXG7", "EXG8",
    "GSR1", "GSR2", "Erg1", "Erg2", "Resp", "Temp", "Status",
)
#: All 47 channels of a MAHNOB-HCI emotion BDF, in file order.
MAHNOB_CHANNELS: tuple[str, ...] = EEG_CHANNELS + OTHER_CHANNELS
STATUS = "Status"
EXPECTED_FS = 256.0
#: BioSemi trigger bits of the Status channel.
TRIGGER_MASK = 0xFFFF
#: Protocol: seconds of recording before the stimulus onset and after its offset.
LEAD_S = 30.0


@dataclass(frozen=True)
class BdfRecording:
    """One emotion session's EEG.

    eeg      (32, n_samples) float64 in µV, rows in :data:`EEG_CHANNELS` order
    status   (n_samples,) int64 trigger codes (Status & :data:`TRIGGER_MASK`)
    fs       sampling rate in Hz, read from the header
    """

    path: str
    fs: float
    eeg: np.ndarray
    status: np.ndarray
    ch_names: tuple[str, ...]

    @property
    def n_samples(self) -> int:
        return int(self.status.size)

    @property
    def seconds(self) -> float:
        return self.n_samples / self.fs


def _open_raw(path):
    import mne

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: BDF file not found")
    try:
        return mne.io.read_raw_bdf(path, preload=False, verbose="error")
    except Exception as err:  # MNE raises various errors on a broken header
        raise MahnobFormatError(f"{path}: not a readable BDF file ({type(err).__name__}: {err})") from None


def _status(raw, path) -> np.ndarray:
    if STATUS not in raw.ch_names:
        raise MahnobFormatError(
            f"{path}: no {STATUS!r} channel (the stimulus markers); found {len(raw.ch_names)} channels "
            f"{raw.ch_names[:6]}{' ...' if len(raw.ch_names) > 6 else ''}")
    codes = raw.get_data(picks=[STATUS])[0]
    return np.bitwise_and(np.rint(codes).astype(np.int64), TRIGGER_MASK)


def read_bdf_status(path) -> tuple[np.ndarray, float]:
    """The trigger codes of any BioSemi BDF's Status channel: ``(codes (n,) int64, fs Hz)``."""
    raw = _open_raw(path)
    return _status(raw, path), float(raw.info["sfreq"])


def read_mahnob_bdf(path, expected_fs: float | None = EXPECTED_FS) -> BdfRecording:
    """Read one MAHNOB-HCI emotion BDF: the 32 EEG channels (µV) and the Status trigger codes.

    Parameters
    ----------
    path : str or Path
        ``Part_<p>_S_Trial<k>_emotion.bdf``.
    expected_fs : float or None
        The rate the header must declare, Hz (256 for MAHNOB-HCI); None accepts any rate.

    Raises :class:`~rmmt.data.mahnob.MahnobFormatError` naming the file when the channel count
    is not 47, an EEG channel or Status is missing, or the rate differs.
    """
    raw = _open_raw(path)
    names = list(raw.ch_names)
    missing = [c for c in MAHNOB_CHANNELS if c not in names]
    if len(names) != len(MAHNOB_CHANNELS) or missing:
        raise MahnobFormatError(
            f"{path}: {len(names)} channels {names[:4]}{' ...' if len(names) > 4 else ''}, expected the "
            f"{len(MAHNOB_CHANNELS)} MAHNOB-HCI channels (32 EEG {EEG_CHANNELS[0]}..{EEG_CHANNELS[-1]} in BioSemi "
            f"order, EXG1-8, GSR1, GSR2, Erg1, Erg2, Resp, Temp, Status); missing {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''}")
    fs = float(raw.info["sfreq"])
    if expected_fs is not None and abs(fs - float(expected_fs)) > 1e-6:
        raise MahnobFormatError(f"{path}: sampling rate {fs} Hz in the header, expected {float(expected_fs)} Hz")
    eeg = raw.get_data(picks=list(EEG_CHANNELS), units="uV")
    return BdfRecording(path=str(path), fs=fs, eeg=np.asarray(eeg, dtype=np.float64),
                        status=_status(raw, path), ch_names=tuple(names))


def stimulus_bounds(status, fs: float, *, cut_len_s: float | None, lead_in_s: float | None = LEAD_S,
                    lead_out_s: float | None = LEAD_S, tolerance_s: float = 1.0, where: str = "Status") -> tuple[int, int]:
    """Stimulus ``(onset, offset)`` sample indices (offset exclusive) from the trigger codes.

    The onset is the first sample whose code differs from the code before it; the offset is
    the sample of the last change (the first sample after the stimulus). Cross-checks, each
    skipped when its value is None: ``onset / fs`` against ``lead_in_s``, the recording after
    the offset against ``lead_out_s``, and ``(offset - onset) / fs`` against ``cut_len_s``;
    any disagreement over ``tolerance_s`` raises :class:`MahnobFormatError` starting with
    ``where`` (a file name) and giving sample indices and seconds.
    """
    codes = np.asarray(status)
    if codes.ndim != 1 or codes.size < 2:
        raise MahnobFormatError(f"{where}: expected a 1-D Status channel, got shape {codes.shape}")
    edges = np.flatnonzero(np.diff(codes)) + 1
    if edges.size == 0:
        raise MahnobFormatError(
            f"{where}: the Status trigger code is constant ({int(codes[0])}) over {codes.size} samples "
            f"({codes.size / fs:.1f} s): no stimulus onset/offset marker")
    onset, offset = int(edges[0]), int(edges[-1])
    if edges.size == 1:
        raise MahnobFormatError(
            f"{where}: the Status trigger code changes only once (sample {onset}, {onset / fs:.2f} s): "
            "no stimulus offset marker")
    n = codes.size
    checks = [("lead-in before the onset", onset / fs, lead_in_s, f"onset at sample {onset}"),
              ("lead-out after the offset", (n - offset) / fs, lead_out_s, f"offset at sample {offset} of {n}"),
              ("stimulus length (cutLenSec)", (offset - onset) / fs, cut_len_s,
               f"onset {onset} to offset {offset}")]
    for what, found, expected, detail in checks:
        if expected is not None and abs(found - float(expected)) > tolerance_s:
            raise MahnobFormatError(
                f"{where}: {what} is {found:.2f} s ({detail}, {fs:g} Hz), expected {float(expected):.2f} s "
                f"within {tolerance_s:g} s; the Status markers disagree with the protocol")
    return onset, offset
