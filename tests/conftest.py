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


@pytest.fixture(scope="session")
def realdata():
    if not REALDATA.is_dir():
        pytest.skip(f"{REALDATA} not present")
    return REALDATA
