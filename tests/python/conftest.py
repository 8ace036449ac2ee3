import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("ISOLINE_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


@pytest.fixture
def shared_data():
    """Path to ../shared/data; fails (not skips) when missing, so CI reports it."""
    if not SHARED.exists():
        pytest.fail(f"shared data missing: {SHARED} (tests using it need ../shared/data)")
    return SHARED
