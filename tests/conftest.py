"""Shared fixtures: a small synthetic WESAD written once per test session."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


@pytest.fixture(scope="session")
def wesad_root(tmp_path_factory):
    """Three synthetic WESAD subjects (S2, S3, S4) of 3 minutes each, in the real format."""
    from attx_keras.data.synthetic import write_synthetic

    root = tmp_path_factory.mktemp("wesad")
    write_synthetic(root, subjects=[2, 3, 4], seed=0, minutes=3)
    return root


@pytest.fixture(scope="module")
def on_backend():
    """``on_backend(backend, script)``: run a script on a Keras backend in the test module's warm worker
    for that backend (tests/backends.py) and return what it printed; fails the test if it raised.
    Module scope: a worker holds its backend (about 1 GB) only while its module's tests run."""
    from tests.backends import BackendWorkers

    workers = BackendWorkers()
    yield workers
    workers.close()


@pytest.fixture(scope="module")
def one_ray_at_a_time(tmp_path_factory):
    """A lock shared by the test processes (``make test`` runs files in parallel, pytest-xdist), held
    while a module's Ray tests run: one local Ray cluster on the machine at a time."""
    pytest.importorskip("ray")
    from filelock import FileLock  # a dependency of Ray

    with FileLock(str(tmp_path_factory.getbasetemp().parent / "ray.lock")):
        yield


@pytest.fixture(scope="session")
def realdata():
    if not REALDATA.is_dir():
        pytest.skip(f"{REALDATA} not present")
    return REALDATA
