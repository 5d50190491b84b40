"""The notebook series: parameters, cached stages, figures, tables and the papermill runner.

Importing this package registers every family of notebooks that ``unlearnkit run`` can execute.
"""

from . import (
           gaussian,  # noqa: F401  (registers the gaussian family)
           language,  # noqa: F401  (registers the language-model family)
)
from .families import FAMILIES, Family, load_parameter_file, register_family
from .gaussian import GaussianParameters
from .parameters import SeriesParameters
from .stages import Series

__all__ = ["FAMILIES", "Family", "GaussianParameters", "Series", "SeriesParameters", "load_parameter_file",
           "register_family"]
