"""RMMT's windows of label steps: a trial cut into windows of ``window`` steps with hop ``hop`` (the
last one aligned to the trial's end; a trial shorter than one window edge-padded), and a whole
trial predicted by averaging its overlapping windows' predictions (the padding dropped). A trial is
any object with ``face`` (L, E), ``eeg`` (L, 192) and ``valence`` (L,) arrays
(:class:`rmmt.task.TrialArrays`)."""
from __future__ import annotations

import numpy as np


def window_starts(n_steps: int, window: int, hop: int) -> np.ndarray:
    """Start steps of the windows covering ``n_steps``: 0, hop, 2 hop ... and the last one aligned
    to the end (one window at 0 for a trial shorter than ``window``)."""
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop: expected >= 1 step, got {window} and {hop}")
    if n_steps <= window:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, n_steps - window + 1, hop)
    if starts[-1] != n_steps - window:
        starts = np.append(starts, n_steps - window)
    return starts.astype(np.int64)


def _pad(a: np.ndarray, window: int) -> np.ndarray:
    if len(a) >= window:
        return a
    return np.pad(a, [(0, window - len(a))] + [(0, 0)] * (a.ndim - 1), mode="edge")


def make_windows(trials: list, window: int, hop: int, inputs: tuple[str, ...]):
    """(x dict of (n, window, ...) float32, y (n, window) float32) of every trial's windows."""
    xs = {k: [] for k in inputs}
    ys = []
    for t in trials:
        arrays = {"face": _pad(t.face, window), "eeg": _pad(t.eeg, window)}
        v = _pad(t.valence, window)
        for s in window_starts(len(t.valence), window, hop):
            for k in inputs:
                xs[k].append(arrays[k][s:s + window])
            ys.append(v[s:s + window])
    return ({k: np.asarray(v, dtype=np.float32) for k, v in xs.items()}, np.asarray(ys, dtype=np.float32))


def predict_trials(model, trials: list, window: int, hop: int, outputs=("valence",),
                   batch_size: int = 64) -> list[dict]:
    """Per trial, output name -> (L,) predictions averaged over overlapping windows."""
    inputs = tuple(t.name for t in model.inputs)
    x, _ = make_windows(trials, window, hop, inputs)
    pred = model.predict(x, batch_size=batch_size, verbose=0)
    if not isinstance(pred, dict):
        pred = {"valence": pred}
    out, i = [], 0
    for t in trials:
        n = len(t.valence)
        starts = window_starts(n, window, hop)
        per = {}
        for name in outputs:
            acc = np.zeros(max(n, window))
            cnt = np.zeros(max(n, window))
            for j, s in enumerate(starts):
                acc[s:s + window] += pred[name][i + j]
                cnt[s:s + window] += 1
            per[name] = (acc / cnt)[:n]
        i += len(starts)
        out.append(per)
    return out
