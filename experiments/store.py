"""Atomic writes and content fingerprints for results and caches."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def default_cache_dir() -> Path:
    """Where synthetic datasets and preprocessed arrays live: ``$PHYSIO_FUSION_CACHE``, else
    ``~/.cache/physio-fusion`` (the one default of the runner, the searches, rmmt and the benchmarks)."""
    return Path(os.environ.get("PHYSIO_FUSION_CACHE", Path.home() / ".cache" / "physio-fusion"))


@contextlib.contextmanager
def _replacing(path: Path, suffix: str):
    """A temporary file name beside ``path`` (ending in ``suffix``) that replaces ``path`` with
    ``os.replace`` when the block ends without error, and is removed when it raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    A reader sees either the old file or the complete new one, never a partial write.
    """
    path = Path(path)
    with _replacing(path, ".tmp") as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def load_or_compute(path, compute, *, allow_pickle: bool = False):
    """The array file ``path`` (``.npy``: one array; ``.npz``: a dict of its arrays) when it exists,
    else ``compute()`` (an array, or a dict of arrays for ``.npz``), written to ``path`` atomically
    (:func:`atomic_write_bytes`) and returned as computed; ``path`` None: computed, nothing written.

    The one array cache of the project: the key of what ``path`` holds (file digests, parameters,
    the pipeline's code version) is the caller's, in the file name.
    """
    import io

    import numpy as np

    if path is None:
        return compute()
    path = Path(path)
    if path.suffix not in (".npy", ".npz"):
        raise ValueError(f"cache file {path}: expected a name ending in .npy or .npz")
    if path.is_file():
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=allow_pickle)
        with np.load(path, allow_pickle=allow_pickle) as z:
            return {k: z[k] for k in z.files}
    value = compute()
    buf = io.BytesIO()
    if path.suffix == ".npy":
        np.save(buf, value)
    else:
        np.savez(buf, **value)
    atomic_write_bytes(path, buf.getvalue())
    return value


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_save_model(model, path) -> Path:
    """Save a Keras ``model`` to ``path`` (``.keras``) via a temporary file and ``os.replace``.

    Keras picks the format from the suffix, so the temporary file also ends in ``.keras``.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model path {path}: expected a file name ending in .keras")
    with _replacing(path, ".tmp.keras") as tmp:
        model.save(tmp)
    return path


#: the member of a ``.keras`` archive (a zip) that holds what the model was trained for
MODEL_METADATA = "physio_fusion.json"


def stamp_model(path, metadata: dict) -> Path:
    """Write ``metadata`` into the ``.keras`` file ``path`` as its member :data:`MODEL_METADATA`.

    A ``.keras`` file is a zip archive; Keras reads only its own members (``config.json``,
    ``metadata.json``, ``model.weights.h5``), so ``keras.models.load_model`` ignores this one.
    The archive is rewritten into a temporary file and replaces ``path`` with ``os.replace``: a
    reader sees the old file or the stamped one. An older stamp is replaced.
    """
    path = Path(path)
    text = json.dumps(metadata, indent=2, sort_keys=True, default=_json_default) + "\n"
    try:
        src = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"model file {path}: not a zip archive "
                         "(expected a .keras file written by model.save)") from None
    with src, _replacing(path, ".tmp.keras") as tmp:
        with zipfile.ZipFile(tmp, "w") as dst:
            for item in src.infolist():
                if item.filename != MODEL_METADATA:
                    dst.writestr(item, src.read(item))
            dst.writestr(MODEL_METADATA, text, compress_type=zipfile.ZIP_DEFLATED)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
    return path


def read_model_metadata(path) -> dict | None:
    """The :func:`stamp_model` metadata of a ``.keras`` file, or None when it has none (a model
    saved by plain ``model.save``, or not a readable archive)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read(MODEL_METADATA))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a results file")


def stable_hash(obj, length: int = 16) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys), truncated to ``length`` hex digits."""
    text = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def file_digest(path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


#: A memoised digest is trusted only for files last modified this long before it was computed
#: (file times are coarse: a file rewritten within one clock tick can keep its size and mtime).
RACY_WINDOW_NS = 2_000_000_000


def cached_file_digest(path, memo_dir) -> str:
    """:func:`file_digest`, memoised in ``memo_dir`` by the file's path, size, inode and mtime.

    Hashing a 1 GB recording takes longer than loading its cached windows; a re-run only needs
    to know the file is unchanged. The memo is used only when size, inode and mtime all match
    and the file was already older than :data:`RACY_WINDOW_NS` when it was hashed (as git does
    against "racily clean" entries); otherwise the file is hashed again.
    """
    path = Path(path).resolve()
    st = path.stat()
    stamp = {"path": str(path), "size": st.st_size, "ino": st.st_ino, "mtime_ns": st.st_mtime_ns}
    memo = Path(memo_dir) / "digests" / f"{stable_hash(str(path))}.json"
    try:
        known = json.loads(memo.read_text())
        if {k: known.get(k) for k in stamp} == stamp and known["hashed_at_ns"] - st.st_mtime_ns > RACY_WINDOW_NS:
            return known["sha256"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        pass
    hashed_at = time.time_ns()
    digest = file_digest(path)
    atomic_write_json(memo, {**stamp, "sha256": digest, "hashed_at_ns": hashed_at})
    return digest
