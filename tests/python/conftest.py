import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("ISOLINE_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shared_data():
    """Path to ../shared/data; fails (not skips) when missing, so CI reports it."""
    if not SHARED.exists():
        pytest.fail(f"shared data missing: {SHARED} (tests using it need ../shared/data)")
    return SHARED


@pytest.fixture(scope="session")
def small_hn():
    """A small generated head-and-neck case (96 x 96 x 40 voxels of 3 x 3 x 5 mm)."""
    from isoline import phantoms
    return phantoms.make_head_neck(3, size=(96, 96, 40), spacing=(3.0, 3.0, 5.0))


@pytest.fixture(scope="session")
def hn_case_dir(tmp_path_factory, small_hn):
    """small_hn written with write_phantom: ct.nii.gz, masks/, dicom/ (CT + RS.dcm)."""
    from isoline import phantoms
    d = tmp_path_factory.mktemp("hn3")
    phantoms.write_phantom(small_hn, str(d))
    return d
