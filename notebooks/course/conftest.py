"""pytest collects notebooks with nbval. In the course it executes the instructors' versions
(``solutions/``); the student versions beside this file have unfilled exercises by design, so they are
not executed: ``tests/test_course.py`` checks instead that they are generated from the solutions."""

from pathlib import Path

STUDENT_VERSIONS = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    if collection_path.suffix == ".ipynb" and collection_path.resolve().parent == STUDENT_VERSIONS:
        return True
    return None
