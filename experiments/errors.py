"""The one error policy of every command-line entry point (``python -m experiments``, the tuner,
``attx_keras.predict``, the other packages' CLIs).

A user's mistake becomes ONE line on stderr and exit status 2, no traceback::

    error: <file / subject / modality / argument>: <what was found> (expected <what>)

``--debug`` anywhere on the command line re-raises instead (the full traceback is shown).

API
---
``run_cli(main, argv=None) -> int``
    Call ``main(argv_without_debug)`` (``argv`` defaults to ``sys.argv[1:]``; ``--debug`` is
    removed before ``main`` sees it, so a CLI's parser need not declare it; use
    :func:`add_debug_argument` to list it in ``--help``). Returns ``main``'s status, or 2 after
    printing the error line for a user mistake, 130 after Ctrl-C, 141 (silently) when stdout
    was closed early (``| head``). Typical use::

        def main(argv=None) -> int: ...
        if __name__ == "__main__":
            sys.exit(run_cli(main))

``cli_entry(main)``
    Decorator form: ``cli_entry(main)(argv=None)`` is ``run_cli(main, argv)``.

``add_debug_argument(parser)``
    Adds ``--debug`` to an ``argparse`` parser (help text only; :func:`run_cli` handles it).

``CliParser``
    An ``argparse.ArgumentParser`` whose usage errors are one line too (``error: argument
    --jobs: invalid int value: 'x' (see --help)``, exit 2) and that lists ``--debug``; its
    sub-parsers inherit both. Use it in place of ``argparse.ArgumentParser``.

``format_error(where, found, expected) -> str``
    The shared wording: ``"<where>: <found> (expected <expected>)"``. Raise ``ValueError`` (or a
    subclass) with it.

``error_line(err, argv=()) -> str | None``
    The line printed for ``err`` (without the trailing newline), or None when ``err`` is not a
    user mistake (a bug: it propagates with its traceback).

``UserError`` / ``SweepError``
    Raise :class:`UserError` for a mistake that has no better built-in class;
    :class:`SweepError` (a ``RuntimeError``) is what the runner raises when the sweep cannot go
    on (e.g. the data changed during the sweep).

What counts as a user mistake: ``ValueError`` (including ``WesadFormatError`` and
``LeakageError``), ``KeyError``, ``OSError`` (``FileNotFoundError``, permissions, a full disk;
the file name is put first), ``pickle.UnpicklingError`` (including ``UnsafePickleError``), a missing
module (``--backend jax`` without jax: ``error: --backend jax: module 'jax' is not installed
(expected pip install jax)``), :class:`UserError` and :class:`SweepError`. Any other exception
(``TypeError``, ``AttributeError``, a ``RuntimeError`` from a library ...) is a bug and keeps its
traceback. ``SystemExit`` (argparse's own usage errors, already exit 2) passes through.
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
from collections.abc import Callable, Sequence
from functools import wraps

DEBUG_FLAG = "--debug"

#: pip distribution of a module whose import name differs (for the "expected pip install" hint)
PIP_NAMES = {"sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow", "cv2": "opencv-python",
             "keras_tuner": "keras-tuner", "mne": "mne", "pyedflib": "pyEDFlib"}


#: a missing module of the project itself is a broken install or a bug, not a user's mistake
OWN_PACKAGES = {"experiments", "attx_keras", "preprocessing", "transformer_ssl", "rmmt", "tests"}


class UserError(Exception):
    """A mistake in the user's input that no built-in exception class describes."""


class SweepError(UserError, RuntimeError):
    """The runner cannot go on with the sweep as asked (e.g. the data changed while it ran)."""


def format_error(where, found, expected) -> str:
    """``"<where>: <found> (expected <expected>)"``, the wording every message follows."""
    return f"{where}: {found} (expected {expected})"


def add_debug_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """List ``--debug`` in ``parser``'s help (it is consumed by :func:`run_cli`)."""
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="show the full traceback of an error instead of one line")
    return parser


class CliParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with one-line usage errors (exit 2) and ``--debug`` in its help."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if DEBUG_FLAG not in self._option_string_actions:
            add_debug_argument(self)

    def error(self, message: str):
        self.exit(2, f"error: {' '.join(message.split())} (see {self.prog} --help)\n")


def _message(err: BaseException) -> str:
    # KeyError's str() adds quotes around its argument; every class: first arg if it is the message
    if len(err.args) == 1 and isinstance(err.args[0], str):
        text = err.args[0]
    else:
        text = str(err) or type(err).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip()) or type(err).__name__


def _backend_arg(argv: Sequence[str]) -> str | None:
    argv = list(argv)
    for i, a in enumerate(argv):
        if a == "--backend" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--backend="):
            return a.partition("=")[2]
    return None


def error_line(err: BaseException, argv: Sequence[str] = ()) -> str | None:
    """The one-line message for a user mistake, or None for a bug (see the module docstring)."""
    if isinstance(err, ModuleNotFoundError) and err.name and err.name.split(".")[0] not in OWN_PACKAGES:
        module = err.name.split(".")[0]
        where = ""
        backend = _backend_arg(argv)
        if backend is not None and module == backend.split(".")[0]:
            where = f"--backend {backend}: "
        pip = PIP_NAMES.get(module, module)
        return f"error: {where}module {module!r} is not installed (expected pip install {pip})"
    if isinstance(err, OSError) and not isinstance(err, pickle.UnpicklingError):
        if err.filename is not None and err.strerror:
            what = {FileNotFoundError: "an existing path", IsADirectoryError: "a file",
                    NotADirectoryError: "a folder", PermissionError: "a readable/writable path"}
            found = err.strerror.lower()
            expected = what.get(type(err), "a usable path")
            name = err.filename if err.filename2 is None else f"{err.filename} -> {err.filename2}"
            return f"error: {format_error(name, found, expected)}"
        return f"error: {_message(err)}"
    if isinstance(err, pickle.UnpicklingError):
        return f"error: {_message(err)}"
    if isinstance(err, (ValueError, KeyError, UserError)):
        return f"error: {_message(err)}"
    return None


def run_cli(main: Callable[[list[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main`` under the error policy; returns the exit status (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    rest = [a for a in argv if a != DEBUG_FLAG]
    try:
        status = main(rest)
    except BrokenPipeError:  # stdout closed early (``... | head``): not an error, nothing to say
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted (finished folds are stored; run the same command again to resume)",
              file=sys.stderr, flush=True)
        return 130
    except Exception as err:  # noqa: BLE001 - classified below; bugs are re-raised
        line = None if debug else error_line(err, rest)
        if line is None:
            raise
        print(line, file=sys.stderr, flush=True)
        return 2
    return 0 if status is None else int(status)


def cli_entry(main: Callable[[list[str] | None], int | None]) -> Callable[[Sequence[str] | None], int]:
    """Decorator: ``cli_entry(main)(argv)`` runs ``main`` through :func:`run_cli`."""

    @wraps(main)
    def wrapped(argv: Sequence[str] | None = None) -> int:
        return run_cli(main, argv)

    return wrapped
