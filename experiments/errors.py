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
    printing the error line for a user mistake, 1 after printing a bug's traceback and
    :data:`BUG_LINE`, 130 after Ctrl-C, 141 (silently) when stdout was closed early (``| head``).
    Typical use::

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
    The shared wording: ``"<where>: <found> (expected <expected>)"``. Raise
    :class:`UserInputError` (or a subclass) with it.

``error_line(err, argv=()) -> str | None``
    The line printed for ``err`` (without the trailing newline), or None when ``err`` is not a
    user mistake (a bug: :func:`run_cli` prints its traceback and :data:`BUG_LINE`).

``UserError`` / ``UserInputError`` / ``UnknownNameError`` / ``SweepError``
    Raise :class:`UserInputError` (a ``ValueError``) when an input check fails,
    :class:`UnknownNameError` (also a ``KeyError``) for an unknown name, :class:`UserError` for
    another mistake that has no better class; :class:`SweepError` (a ``RuntimeError``) is what the
    runner raises when the sweep cannot go on (e.g. the data changed during the sweep).

What counts as a user mistake (exactly these; :func:`is_user_mistake`):

* the project's own error classes: :class:`UserError` and its subclasses (:class:`SweepError`,
  :class:`UserInputError` and the readers' and pipelines' format errors derived from it, such as
  ``WesadFormatError``, ``PipelineInputError``, ``SignalFileError``, ``LeakageError``;
  :class:`UnknownNameError` for an unknown experiment, profile or row);
* a path the user named that is missing, not a file / folder, or not permitted
  (``FileNotFoundError``, ``NotADirectoryError``, ``IsADirectoryError``, ``PermissionError``,
  ``FileExistsError``; the file name is put first), a full disk or a read-only file system;
* a pickle that is not a readable pickle (``pickle.UnpicklingError``; our restricted unpickler's
  ``UnsafePickleError``);
* a missing optional module (``--backend jax`` without jax: ``error: --backend jax: module 'jax'
  is not installed (expected pip install jax)``); a missing module of the project itself is not;
* argparse's usage errors (``SystemExit`` with status 2 from :class:`CliParser`, passed through).

Everything else is a bug, including a plain ``ValueError``, ``KeyError`` or ``OSError`` that no
input check of ours raised: ``run_cli`` prints its traceback, then one line
(:data:`BUG_LINE`) asking for a report, and returns 1. Input checks therefore raise
:class:`UserInputError` (a ``ValueError``), not a plain ``ValueError``.
"""
from __future__ import annotations

import argparse
import errno
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Sequence
from functools import wraps

DEBUG_FLAG = "--debug"

#: pip distribution of a module whose import name differs (for the "expected pip install" hint)
PIP_NAMES = {"sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow", "cv2": "opencv-python",
             "keras_tuner": "keras-tuner", "mne": "mne", "pyedflib": "pyEDFlib"}


#: a missing module of the project itself is a broken install or a bug, not a user's mistake
OWN_PACKAGES = {"experiments", "attx_keras", "preprocessing", "transformer_ssl", "rmmt", "tests"}


#: printed after the traceback of an exception that is not a user mistake (exit status 1)
BUG_LINE = ("bug: this {kind} is a bug in physio-fusion, not a mistake in your input: please report it with "
            "the traceback above and the command line")


class UserError(Exception):
    """A mistake in the user's input that no built-in exception class describes."""


class UserInputError(UserError, ValueError):
    """An input check failed: an argument, a file's content, a dataset folder, a configuration the
    user chose. Raise it (with :func:`format_error`'s wording) where a plain ``ValueError`` would
    otherwise say that the input is wrong; readers' format errors derive from it."""


class UnknownNameError(UserInputError, KeyError):
    """An experiment, profile, row or fold name that is not registered (a ``KeyError`` too)."""


class SweepError(UserError, RuntimeError):
    """The runner cannot go on with the sweep as asked (e.g. the data changed while it ran)."""


#: user path errors: the class and what was expected instead
_PATH_ERRORS = {FileNotFoundError: "an existing path", IsADirectoryError: "a file", NotADirectoryError: "a folder",
                PermissionError: "a readable/writable path", FileExistsError: "a path that does not exist yet"}
#: OSError numbers that are about the user's machine, not our code: a full disk, quota, read-only
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


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


def is_user_mistake(err: BaseException) -> bool:
    """Whether ``err`` is a user's mistake (see the module docstring) rather than a bug."""
    if isinstance(err, ModuleNotFoundError):
        return bool(err.name) and err.name.split(".")[0] not in OWN_PACKAGES
    if isinstance(err, (UserError, pickle.UnpicklingError)):
        return True
    if isinstance(err, OSError):
        return isinstance(err, tuple(_PATH_ERRORS)) or err.errno in _ENVIRONMENT_ERRNOS
    return False


def error_line(err: BaseException, argv: Sequence[str] = ()) -> str | None:
    """The one-line message for a user mistake, or None for a bug (see the module docstring)."""
    if not is_user_mistake(err):
        return None
    if isinstance(err, ModuleNotFoundError):
        module = err.name.split(".")[0]
        where = ""
        backend = _backend_arg(argv)
        if backend is not None and module == backend.split(".")[0]:
            where = f"--backend {backend}: "
        pip = PIP_NAMES.get(module, module)
        return f"error: {where}module {module!r} is not installed (expected pip install {pip})"
    if isinstance(err, OSError) and not isinstance(err, pickle.UnpicklingError) and \
            err.filename is not None and err.strerror:
        found = err.strerror.lower()
        expected = next((v for k, v in _PATH_ERRORS.items() if isinstance(err, k)), "a usable path")
        name = err.filename if err.filename2 is None else f"{err.filename} -> {err.filename2}"
        return f"error: {format_error(name, found, expected)}"
    return f"error: {_message(err)}"


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
    except Exception as err:  # noqa: BLE001 - classified below
        if debug:
            raise
        line = error_line(err, rest)
        if line is None:  # a bug: its traceback, then a request for a report
            sys.stdout.flush()
            traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
            print(BUG_LINE.format(kind=type(err).__name__), file=sys.stderr, flush=True)
            return 1
        print(line, file=sys.stderr, flush=True)
        return 2
    return 0 if status is None else int(status)


def cli_entry(main: Callable[[list[str] | None], int | None]) -> Callable[[Sequence[str] | None], int]:
    """Decorator: ``cli_entry(main)(argv)`` runs ``main`` through :func:`run_cli`."""

    @wraps(main)
    def wrapped(argv: Sequence[str] | None = None) -> int:
        return run_cli(main, argv)

    return wrapped
