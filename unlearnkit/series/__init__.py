"""The notebook series: parameters, cached stages, figures, tables and the papermill runner.

Importing this package registers every family of notebooks that ``unlearnkit run`` can execute.
"""

from . import poisoning  # noqa: F401  (registers the poisoning family)
from .families import FAMILIES, Family, load_parameter_file, register_family
from .parameters import SeriesParameters
from .stages import Series

__all__ = ["FAMILIES", "Family", "Series", "SeriesParameters", "load_parameter_file", "register_family"]
