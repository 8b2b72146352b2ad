"""mzforge: the mzforge mass-spectrometry engine from Python.

Read mzML/MGF files spectrum by spectrum with numpy arrays (:func:`open`), centroid profile
arrays (:func:`centroid`), deconvolve centroids into isotopic envelopes (:func:`deconvolve`),
and process whole files into Arrow tables or the Parquet result
directory ``mzforge run`` writes (:func:`process`). Long calls release the GIL.
"""

from __future__ import annotations

from ._api import Centroids, Deconvolution, RunResult, centroid, deconvolve, open, process
from ._errors import (
    InputReadError,
    InvalidInputError,
    InvalidParameterError,
    MzforgeError,
    OutputError,
)
from ._mzforge import Precursor, Reader, Spectrum, __version__, simd_backend

__all__ = [
    "__version__",
    # reading
    "open",
    "Reader",
    "Spectrum",
    "Precursor",
    # processing
    "centroid",
    "Centroids",
    "deconvolve",
    "Deconvolution",
    "process",
    "RunResult",
    "simd_backend",
    # errors
    "MzforgeError",
    "InvalidInputError",
    "InputReadError",
    "InvalidParameterError",
    "OutputError",
]
