"""The notebook series: parameters, cached stages, figures, tables and the papermill runner."""

from .parameters import SeriesParameters, load_parameter_file
from .stages import Series

__all__ = ["Series", "SeriesParameters", "load_parameter_file"]
