"""Test scripts on another Keras backend, in one warm worker process per backend and test module.

Keras picks its backend once per process, so a check of the JAX or PyTorch path (or of TensorFlow
under a global dtype policy) runs as a script in a process started with ``KERAS_BACKEND`` set.
Starting Python and importing a backend costs 4-10 s per script; here one worker per backend
serves every script of a test module (fixture ``on_backend`` in ``conftest.py``):

* each script runs in a fresh namespace, its ``print`` output captured and returned;
* after each, the worker sets the global dtype policy back to ``float32`` and clears the Keras
  session, so a script sees what a fresh process would (scripts seed their own generators);
* a script that raises fails the calling test with the script's traceback; a worker that dies or
  exceeds the timeout is replaced for the next script.

Protocol: one JSON line per request on the worker's stdin, one ``RESULT`` + JSON line back on a
private copy of its stdout; the script's own stdout is captured, and anything written to file
descriptor 1 by native code goes to the worker's stderr log.
"""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "\x00RESULT "


class BackendWorker:
    """One Python process with ``KERAS_BACKEND=backend`` that runs scripts sent to it (see module doc)."""

    def __init__(self, backend: str):
        self.backend = backend
        self.log = tempfile.TemporaryFile(mode="w+")
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", "from tests.backends import serve; serve()"], cwd=ROOT,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 3000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-n:]

    def run(self, script: str, timeout: float = 300) -> str:
        """Run ``script``; return what it printed. AssertionError (with its traceback) if it raised."""
        self.proc.stdin.write(json.dumps({"script": script}) + "\n")
        self.proc.stdin.flush()
        line = self._read_line(timeout)
        if line is None:
            self.close()
            raise AssertionError(f"{self.backend} worker: no answer within {timeout} s\n{self.log_tail()}")
        if not line:
            raise AssertionError(f"{self.backend} worker died (status {self.proc.wait()})\n{self.log_tail()}")
        reply = json.loads(line[len(MARK):])
        if reply["error"]:
            raise AssertionError(f"script failed on {self.backend}:\n{reply['stdout'][-2000:]}{reply['error']}")
        return reply["stdout"]

    def _read_line(self, timeout: float) -> str | None:
        """The next protocol line ('' at end of file), or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                line = self.proc.stdout.readline()
                if not line or line.startswith(MARK):
                    return line

    def close(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        self.log.close()


class BackendWorkers:
    """A module's workers, started on first use: ``workers(backend, script)`` -> the script's stdout."""

    def __init__(self):
        self.workers: dict[str, BackendWorker] = {}

    def __call__(self, backend: str, script: str, timeout: float = 300) -> str:
        worker = self.workers.get(backend)
        if worker is None or not worker.alive():
            if worker is not None:
                worker.close()  # a worker that died or timed out: its process reaped, its log closed
            worker = self.workers[backend] = BackendWorker(backend)
        return worker.run(script, timeout)

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()


def serve() -> None:
    """The worker's loop (runs in the backend's process)."""
    import contextlib
    import io
    import traceback

    reply = os.fdopen(os.dup(1), "w")  # the protocol channel: a private copy of stdout
    os.dup2(2, 1)  # native writes to fd 1 go to the log, never into the protocol
    import keras

    for request in sys.stdin:
        captured, error = io.StringIO(), ""
        try:
            with contextlib.redirect_stdout(captured):
                exec(compile(json.loads(request)["script"], "<backend script>", "exec"), {"__name__": "__main__"})
        except BaseException:  # noqa: BLE001 - reported to the test, which fails
            error = traceback.format_exc()
        finally:
            keras.mixed_precision.set_dtype_policy("float32")
            keras.backend.clear_session()
        reply.write(MARK + json.dumps({"stdout": captured.getvalue(), "error": error}) + "\n")
        reply.flush()
