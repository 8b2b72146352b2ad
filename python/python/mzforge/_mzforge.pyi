"""Type stubs of the native module. Use the package ``mzforge``, not this module."""

import os
from pathlib import Path
from typing import Any, Iterator, Literal, SupportsIndex, final, overload

import numpy as np
import numpy.typing as npt

__version__: str

def simd_backend() -> str:
    """The SIMD backend this CPU uses: ``"avx2"``, ``"neon"`` or ``"scalar"``."""

def result_dir_names(file_names: list[str]) -> list[str]:
    """The result directory name of each input of one analysis, from their file names in
    order: the stem, with ``-2``, ``-3``, ... for later inputs of a stem already taken."""

def default_params() -> str: ...
@final
class Params:
    def to_json(self) -> str: ...

def make_params(
    *,
    config_text: str | None = None,
    config_format: str = "toml",
    config_origin: str = "<config>",
    threads: int | None = None,
    ms_levels: list[int] | None = None,
    signal: str | None = None,
    on_bad_spectrum: str | None = None,
    batch_size: int | None = None,
    min_snr: float | None = None,
    min_intensity: float | None = None,
    noise_window: float | None = None,
    spacing_difference_gap: float | None = None,
    spacing_difference: float | None = None,
    max_missing: int | None = None,
    deconvolve: bool | None = None,
    charge_range: tuple[int, int] | None = None,
    isotope_model: str | None = None,
    tolerance_ppm: float | None = None,
    min_fit: float | None = None,
) -> Params:
    """Defaults (or the config), then every argument that is not None; validated."""

def centroid(
    mz: npt.NDArray[np.float64], intensity: npt.NDArray[np.float32], params: Params
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
]: ...
def deconvolve(
    mz: npt.NDArray[np.float64],
    intensity: npt.NDArray[np.float32],
    params: Params,
    negative: bool,
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.int32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.uint32],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.int32],
    npt.NDArray[np.int64],
]:
    """Envelope columns (neutral mass, m/z, charge, intensity, score, n_peaks, most-abundant
    mass, average mass), then per peak its charge (0: none) and envelope index (-1: none)."""

def process(path: str, params: Params, out: str | None = None) -> RunResult: ...
@final
class Precursor:
    """The precursor of an MSn spectrum, as the instrument recorded it."""

    @property
    def mz(self) -> float:
        """Selected ion m/z (NaN when the file gives none)."""
    @property
    def charge(self) -> int | None: ...
    @property
    def intensity(self) -> float | None: ...
    @property
    def isolation_target_mz(self) -> float | None: ...
    @property
    def isolation_lower_mz(self) -> float | None: ...
    @property
    def isolation_upper_mz(self) -> float | None: ...
    @property
    def spectrum_ref(self) -> str | None:
        """Native id of the spectrum the precursor was selected from (mzML ``spectrumRef``)."""
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

@final
class Spectrum:
    """One decoded spectrum: metadata and numpy arrays owning the decoded data."""

    @property
    def index(self) -> int:
        """Position in the file, from 0."""
    @property
    def native_id(self) -> str: ...
    @property
    def ms_level(self) -> int: ...
    @property
    def rt_seconds(self) -> float | None:
        """Scan start time in seconds; None when the file gives none (no ``scan start time``,
        no ``RTINSECONDS``), never a made-up 0."""
    @property
    def polarity(self) -> Literal["positive", "negative", "unknown"]:
        """``"positive"``, ``"negative"`` or ``"unknown"`` (what ``deconvolve(polarity=)``
        takes)."""
    @property
    def signal_declared(self) -> Literal["profile", "centroid"] | None:
        """``"profile"``, ``"centroid"`` or None: what the file declares."""
    @property
    def precursor(self) -> Precursor | None: ...
    @property
    def scan_window(self) -> tuple[float, float] | None: ...
    @property
    def mz(self) -> npt.NDArray[np.float64]:
        """m/z values, ascending."""
    @property
    def intensity(self) -> npt.NDArray[np.float32]: ...
    @property
    def ion_mobility(self) -> npt.NDArray[np.float64] | None:
        """Ion mobility of each point (same length as ``mz``), or None when the spectrum has
        no per-point mobility array; its term and unit are ``ion_mobility_kind`` and
        ``ion_mobility_unit``."""
    @property
    def ion_mobility_kind(self) -> str | None:
        """The mobility array's CV term (``"mean inverse reduced ion mobility array"``,
        ``"mean ion mobility drift time array"``, ..., ``"Ion Mobility"`` for OpenMS's
        non-standard array), or None."""
    @property
    def ion_mobility_unit(self) -> str | None:
        """The mobility array's unit (``"volt-second per square centimeter"``,
        ``"millisecond"``), or None when neither the file nor the term gives one."""
    @property
    def scan_ion_mobility(self) -> float | None:
        """The first scan's ion mobility value (a PASEF precursor's 1/K0), or None."""
    @property
    def scan_ion_mobility_kind(self) -> str | None:
        """What ``scan_ion_mobility`` measures: ``"inverse reduced ion mobility"``,
        ``"ion mobility drift time"``, ``"FAIMS compensation voltage"`` or
        ``"SELEXION compensation voltage"``; None without a value."""
    def __len__(self) -> int: ...
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

def _rebuild_spectrum(state: tuple[Any, ...]) -> Spectrum: ...
def _rebuild_precursor(state: tuple[Any, ...]) -> Precursor: ...

@final
class SpectrumIterator(Iterator[Spectrum]):
    def __iter__(self) -> SpectrumIterator: ...
    def __next__(self) -> Spectrum: ...

@final
class Reader:
    """A reader of one mzML or MGF file; see :func:`mzforge.open`."""

    def __new__(cls, path: str | os.PathLike[str], on_bad_spectrum: str = "skip") -> Reader: ...
    @property
    def path(self) -> Path: ...
    @property
    def info(self) -> dict[str, Any]:
        """``format`` (``"mzml"``/``"mgf"``/``"mzmlb"``), ``gzip``, ``declared_spectrum_count``,
        ``instruments`` (the instrument models the header names, each once)."""
    @property
    def warnings(self) -> list[str]:
        """Spectra skipped while iterating, with the reason; spectra read whose ion mobility
        array could not be used (left out, the spectrum kept); and a wrong ``<indexList>`` found
        by random access (whose spectra are then found by scanning the file)."""
    @property
    def indexed(self) -> bool:
        """True when random access seeks (plain mzML), False when it scans (gzip, MGF)."""
    @property
    def native_ids(self) -> list[str]: ...
    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, key: SupportsIndex | str, /) -> Spectrum:
        """By position (negative counts from the end) or by native id."""
    @overload
    def __getitem__(self, key: slice, /) -> list[Spectrum]: ...
    def __contains__(self, native_id: str, /) -> bool:
        """Whether a spectrum has this native id (``TypeError`` for anything but a str)."""
    def __iter__(self) -> SpectrumIterator: ...
    def close(self) -> None: ...
    def __enter__(self) -> Reader: ...
    def __exit__(self, *args: object) -> bool: ...

@final
class ArrowTable:
    """Record batches exported through the Arrow PyCapsule interface."""

    @property
    def num_rows(self) -> int: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    def __arrow_c_schema__(self) -> object: ...

@final
class RunResult:
    @property
    def spectra(self) -> ArrowTable | None: ...
    @property
    def peaks(self) -> ArrowTable | None: ...
    @property
    def features(self) -> ArrowTable | None: ...
    @property
    def params_json(self) -> str: ...
    @property
    def summary_json(self) -> str: ...
    @property
    def output(self) -> Path | None: ...
