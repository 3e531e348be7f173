"""Issue 18.4: setup.cfg requires the oldest Keras whose behaviour the tests rely on, and it is checked."""
import configparser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from experiments.errors import error_line
from experiments.versions import MIN_KERAS, LibraryVersionError, check_keras

SETUP_CFG = Path(__file__).resolve().parents[1] / "setup.cfg"


def _requirement(name: str) -> Requirement:
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    reqs = [Requirement(line.strip()) for line in cfg["options"]["install_requires"].splitlines() if line.strip()]
    return next(r for r in reqs if r.name == name)


def test_setup_cfg_bound_is_the_checked_minimum_and_the_installed_keras_meets_it():
    import keras

    req = _requirement("keras")
    lower = [s.version for s in req.specifier if s.operator == ">="]
    assert lower == [MIN_KERAS], req
    assert req.specifier.contains(Version(keras.__version__)), f"installed keras {keras.__version__} vs {req}"
    assert check_keras() == keras.__version__


@pytest.mark.parametrize("version", ["3.0.0", "3.3.3", "3.6.0", "3.6.9.dev1"])
def test_an_older_keras_is_a_one_line_error(version):
    with pytest.raises(LibraryVersionError) as exc:
        check_keras(version)
    line = error_line(exc.value)
    assert line.startswith(f"error: keras {version}: too old") and f"keras>={MIN_KERAS}" in line
    assert "\n" not in line


@pytest.mark.parametrize("version", ["3.7.0", "3.7.1.dev0+cpu", "3.15.1"])
def test_the_bound_and_newer_pass(version):
    assert check_keras(version) == version
