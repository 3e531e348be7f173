"""Console output shared by the runner, the tables and the CLI: progress lines, the package
version, and a Keras import without TensorFlow's start-up noise on stderr."""
from __future__ import annotations

import os
import re
import sys
import tempfile

PACKAGE_VERSION = "0.1.0"


def print_now(message: str) -> None:
    """Progress goes out at once, also when stdout is a file or a pipe (``make table1 | tee log``)."""
    print(message, flush=True)


def fmt_seconds(s: float) -> str:
    """``75.4`` -> ``"1m15s"``; an hour or more -> ``"1h02m03s"``."""
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


# TensorFlow's C++ start-up lines, written to fd 2 before absl logging is set up, so that
# TF_CPP_MIN_LOG_LEVEL does not reach them: "I0000 00:00:17... port.cc:153] oneDNN custom ...".
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ ]+:\d+\] ")


def _flush_c_streams() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to call (e.g. some Windows builds)
        pass


def import_keras_quietly():
    """``import keras`` with TensorFlow's C++ start-up lines filtered by ``TF_CPP_MIN_LOG_LEVEL``.

    Level 1 drops info lines (``I...``), 2 also warnings (``W...``), 3 also errors; anything else
    written to stderr during the import is passed on. Keeps a CLI's error message the only line
    on stderr. Returns the ``keras`` module.
    """
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") or 0)
    except ValueError:
        level = 0
    from experiments.versions import check_keras

    if level < 1 or "keras" in sys.modules:
        import keras

        check_keras(keras.__version__)
        return keras
    dropped = "IWE"[:min(level, 3)]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            import keras
        finally:
            sys.stderr.flush()
            _flush_c_streams()  # TensorFlow's lines sit in C stdio buffers until flushed
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode("utf-8", errors="replace").splitlines():
                m = _ABSL_LINE.match(line)
                if line == _ABSL_PREAMBLE or (m and m.group(1) in dropped):
                    continue
                print(line, file=sys.stderr)
    check_keras(keras.__version__)  # a one-line error for a Keras older than setup.cfg's bound
    return keras
