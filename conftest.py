"""Test-session setup shared by the unit tests and the notebooks nbval executes."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config) -> None:
    # Notebooks executed by nbval (and the series tests) write their artifacts into a fresh folder,
    # never into the user's outputs/; the kernels nbval starts inherit this variable.
    os.environ.setdefault("UNLEARNKIT_OUTPUTS", tempfile.mkdtemp(prefix="unlearnkit-test-outputs-"))
