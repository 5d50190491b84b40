"""The teaching path (``notebooks/course/``): exercises, their checks, shared lesson settings, and the
tool that generates the student notebooks from the instructors' versions."""

from .checks import Verdict, compare
from .exercises import EXERCISES, check, reference

__all__ = ["EXERCISES", "Verdict", "check", "compare", "reference"]
