"""The notebook series: parameters, cached stages, figures, tables and the papermill runner.

Importing this package registers every family of notebooks that ``unlearnkit run`` can execute.
"""

from . import gaussian, language, poisoning, reproduce  # noqa: F401  (each registers its family of notebooks)
from .families import FAMILIES, Family, load_parameter_file, register_family
from .gaussian import GaussianParameters
from .parameters import SeriesParameters
from .similar import SimilarParameters
from .similar_stages import SimilarSeries
from .stages import Series

__all__ = ["FAMILIES", "Family", "GaussianParameters", "Series", "SeriesParameters", "SimilarParameters",
           "SimilarSeries", "load_parameter_file", "register_family"]
