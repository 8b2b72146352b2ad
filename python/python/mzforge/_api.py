"""The public functions. Parameter names and defaults are those of ``mzforge run`` (and of
``run.json``'s ``params``); ``tests/test_api.py`` checks them against the engine's."""

from __future__ import annotations

import functools
import inspect
import json
import numbers
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, ParamSpec, Sequence, TypeVar

import numpy as np

from . import _mzforge
from ._errors import InvalidInputError, InvalidParameterError

if TYPE_CHECKING:
    import pyarrow

StrPath = str | bytes | os.PathLike[str] | os.PathLike[bytes]
P = ParamSpec("P")
R = TypeVar("R")


def open(path: StrPath, *, on_bad_spectrum: Literal["skip", "fail"] = "skip") -> _mzforge.Reader:
    """Opens an mzML or MGF file (plain, gzip or bzip2; the format is read from the content).

    The reader iterates every mass spectrum in file order (non-MS traces such as UV are left
    out, as ``mzforge run`` leaves them out); ``reader[i]`` and ``reader["native id"]`` read one
    spectrum, seeking through an offset index on plain mzML and scanning on gzip or MGF;
    ``reader[10:20]`` gives a list of spectra; ``"native id" in reader`` tells whether the file
    holds that id; ``len(reader)`` counts the spectra in the file. Use it as a context manager
    to close it.

    A spectrum that cannot be read or decoded (corrupt arrays, a value that is not a number, a
    broken tag inside it, an unreadable MGF entry) is skipped and listed in ``reader.warnings``
    (``on_bad_spectrum="skip"``, the command line's default) or raises
    :class:`InvalidInputError` (``"fail"``).
    """
    return _mzforge.Reader(os.fsdecode(path), on_bad_spectrum)


@dataclass(frozen=True, repr=False)
class Centroids:
    """Peaks in columns: apex m/z (float64), apex intensity, signal-to-noise and full width at
    half maximum in m/z units (float32 each)."""

    mz: np.ndarray
    intensity: np.ndarray
    snr: np.ndarray
    fwhm: np.ndarray

    def __len__(self) -> int:
        return len(self.mz)

    def __repr__(self) -> str:
        return f"Centroids({len(self)} peaks)"

    def to_arrow(self) -> pyarrow.Table:
        """The peaks as a table with the columns of ``peaks.parquet`` (without
        ``spectrum_index``)."""
        import pyarrow as pa

        return pa.table(
            {"mz": self.mz, "intensity": self.intensity, "snr": self.snr, "fwhm": self.fwhm}
        )


_PARAMETER_NAMES = (
    "threads", "ms_levels", "signal", "on_bad_spectrum", "batch_size", "min_snr",
    "min_intensity", "noise_window", "spacing_difference_gap", "spacing_difference",
    "max_missing", "deconvolve", "charge_range", "isotope_model", "tolerance_ppm", "min_fit",
)

Config = StrPath | Mapping[str, Any]


def _config_value(value: Any) -> Any:
    """A numpy scalar or array in a config mapping, as plain numbers (the keywords take them
    too); anything else JSON cannot hold is refused."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"invalid config mapping: a {type(value).__name__} is not a parameter value")


def _config(config: Config | None) -> dict[str, str]:
    """The ``make_params`` arguments for a config: a TOML file (``mzforge run --config``), a
    JSON file (a ``params`` object, or a whole ``run.json``, whose ``params`` are taken), or a
    mapping in the same layout."""
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return {
            "config_text": json.dumps(dict(config), default=_config_value),
            "config_format": "json",
            "config_origin": "mapping",
        }
    path = Path(os.fsdecode(config))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InvalidParameterError(f"invalid config {path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if path.suffix.lower() != ".json":
        return {"config_text": text, "config_format": "toml", "config_origin": str(path)}
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidParameterError(f"invalid config {path}: {e}") from None
    if isinstance(document, dict) and isinstance(document.get("params"), dict):
        document = document["params"]  # a run.json: repeat that run's parameters
    return {"config_text": json.dumps(document), "config_format": "json", "config_origin": str(path)}


# The keywords' kinds, checked before the native side converts them, so that a value of the
# wrong type is named (the native side names values out of range).
_INTEGERS = ("threads", "batch_size", "max_missing")
_CHOICES = ("signal", "on_bad_spectrum", "isotope_model")
# Deconvolution's settings, which deconvolve=False leaves without effect.
_DECONVOLUTION = ("charge_range", "isotope_model", "tolerance_ppm", "min_fit")
_INT64 = (-(2**63), 2**63 - 1)


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _integer(name: str, value: Any) -> int:
    """An integer keyword as a Python int; beyond 64 bits it is clamped, so that the engine's
    range check names it rather than an ``OverflowError``."""
    if not _is_integer(value):
        raise TypeError(f"invalid parameter `{name}`: must be an integer, not {type(value).__name__}")
    return min(max(int(value), _INT64[0]), _INT64[1])


def _keyword(name: str, value: Any) -> Any:
    """One keyword of :func:`process`, checked for its kind and converted to what the native
    side takes."""
    wrong = None
    if name in _INTEGERS:
        return _integer(name, value)
    if name in _CHOICES:
        if not isinstance(value, str):
            wrong = "a string"
    elif name == "deconvolve":
        if not isinstance(value, (bool, np.bool_)):
            wrong = "True or False"
        else:
            return bool(value)
    elif name in ("ms_levels", "charge_range"):
        what = "a sequence of MS levels" if name == "ms_levels" else "a (min, max) pair of charges"
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            wrong = what
        else:
            items = [_integer(name, v) for v in value]
            if name == "ms_levels":
                return items
            if len(items) != 2:
                # Checked here: the native side's message ("expected tuple of length 2")
                # would not say which parameter.
                wrong, value = what, tuple(items)
            else:
                return tuple(items)
    elif not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        wrong = "a number"
    else:
        return float(value)
    if wrong is not None:
        given = type(value).__name__
        if isinstance(value, tuple):
            given = f"{len(value)} value{'s' if len(value) != 1 else ''}"
        raise TypeError(f"invalid parameter `{name}`: must be {wrong}, not {given}")
    return value


def _params(config: Config | None = None, **given: Any) -> _mzforge.Params:
    """One validated parameter set: the engine's defaults, or ``config``, then the keywords
    in ``given`` (names of :func:`process`), as ``mzforge run`` applies flags over
    ``--config``."""
    unknown = set(given) - set(_PARAMETER_NAMES)
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    # charge_range=None is the default: the automatic range (it cannot undo a config's range).
    if "charge_range" in given and given["charge_range"] is None:
        del given["charge_range"]
    given = {name: _keyword(name, value) for name, value in given.items()}
    if given.get("deconvolve") is False:
        # As `mzforge run --no-deconvolve --tolerance-ppm 5` is a usage error: a setting that
        # cannot act is a mistake to point out, not to ignore.
        ignored = [name for name in _DECONVOLUTION if name in given]
        if ignored:
            raise InvalidParameterError(
                f"invalid parameter `{ignored[0]}`: has no effect with deconvolve=False "
                "(no deconvolution is done)"
            )
    return _mzforge.make_params(**_config(config), **given)


def _keywords_given(run: Callable[[dict[str, Any]], R]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Replaces the decorated function (which documents the signature and the defaults) by
    one that hands ``run`` only the arguments the caller passed, so that a ``config`` holds
    wherever no keyword overrides it."""

    def decorate(public: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(public)

        @functools.wraps(public)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return run(dict(signature.bind(*args, **kwargs).arguments))

        return wrapper

    return decorate


def centroid(
    mz: Any,
    intensity: Any,
    *,
    min_snr: float = 0.0,
    min_intensity: float = 0.0,
    noise_window: float = 200.0,
    spacing_difference_gap: float = 4.0,
    spacing_difference: float = 1.5,
    max_missing: int = 1,
) -> Centroids:
    """Centroids one profile spectrum (OpenMS PeakPickerHiRes's algorithm).

    ``mz`` (ascending) and ``intensity`` are 1-D array-likes of equal length; they are used
    in place when they already are contiguous float64 and float32 arrays, converted
    otherwise. ``min_snr`` is the signal-to-noise a peak and every point it is fitted on must
    reach (0 keeps every local maximum), ``noise_window`` the width in m/z of the noise
    estimation window; the other settings are PeakPickerHiRes's (see ``mzforge run --help``).
    """
    params = _params(
        min_snr=min_snr,
        min_intensity=min_intensity,
        noise_window=noise_window,
        spacing_difference_gap=spacing_difference_gap,
        spacing_difference=spacing_difference,
        max_missing=max_missing,
    )
    mz, intensity = _arrays(mz, intensity)
    return Centroids(*_mzforge.centroid(mz, intensity, params))


def _arrays(mz: Any, intensity: Any) -> tuple[np.ndarray, np.ndarray]:
    """m/z as float64 and intensity as float32, contiguous and 1-D (not copied when they
    already are); the native side checks lengths, finiteness and order."""
    if mz is None or intensity is None:
        # np.asarray(None, float) is [nan], which would be reported as a non-finite m/z.
        missing = "mz" if mz is None else "intensity"
        raise TypeError(f"{missing} must be a 1-D array of numbers, not None")
    # The dimensions are checked before np.ascontiguousarray, which turns a scalar into a
    # one-point spectrum instead of refusing it.
    mz, intensity = np.asarray(mz, dtype=np.float64), np.asarray(intensity, dtype=np.float32)
    if mz.ndim != 1 or intensity.ndim != 1:
        raise InvalidInputError(
            f"m/z and intensity must be 1-D arrays, not {mz.ndim}-D and {intensity.ndim}-D"
        )
    return np.ascontiguousarray(mz), np.ascontiguousarray(intensity)


@dataclass(frozen=True, repr=False)
class Deconvolution:
    """Isotopic envelopes in columns, most convincing first, with ``features.parquet``'s
    names: ``envelope_id`` (0, 1, ... in this result), ``neutral_mass`` (monoisotopic, Da),
    ``mz`` (monoisotopic m/z), ``charge`` (signed by polarity), ``intensity`` (of the observed
    peaks), ``score`` (fit to the isotope pattern, 0-1), ``n_peaks`` (observed peaks),
    ``most_abundant_mass`` and ``average_mass`` (Da).

    Per input peak: ``peak_mz`` and ``peak_intensity`` (the arrays deconvolved),
    ``peak_charge`` (the charge of the envelope holding most of the peak, 0 when none does)
    and ``peak_envelope_id`` (-1 when none does).
    """

    envelope_id: np.ndarray
    neutral_mass: np.ndarray
    mz: np.ndarray
    charge: np.ndarray
    intensity: np.ndarray
    score: np.ndarray
    n_peaks: np.ndarray
    most_abundant_mass: np.ndarray
    average_mass: np.ndarray
    peak_mz: np.ndarray
    peak_intensity: np.ndarray
    peak_charge: np.ndarray
    peak_envelope_id: np.ndarray

    def __len__(self) -> int:
        return len(self.neutral_mass)

    def __repr__(self) -> str:
        charges = sorted(set(np.abs(self.charge).tolist()))
        return f"Deconvolution({len(self)} envelopes of {len(self.peak_mz)} peaks, charges {charges})"

    def to_arrow(self) -> pyarrow.Table:
        """The envelopes as a table with the columns and types of ``features.parquet``
        (without ``spectrum_index``)."""
        import pyarrow as pa

        columns = {
            "envelope_id": (self.envelope_id, pa.uint32()),
            "neutral_mass": (self.neutral_mass, pa.float64()),
            "mz": (self.mz, pa.float64()),
            "charge": (self.charge, pa.int32()),
            "intensity": (self.intensity, pa.float32()),
            "score": (self.score, pa.float32()),
            "n_peaks": (self.n_peaks, pa.uint32()),
            "most_abundant_mass": (self.most_abundant_mass, pa.float64()),
            "average_mass": (self.average_mass, pa.float64()),
        }
        schema = pa.schema([pa.field(name, t, nullable=False) for name, (_, t) in columns.items()])
        return pa.table([pa.array(v, t) for v, t in columns.values()], schema=schema)

    def peaks_to_arrow(self) -> pyarrow.Table:
        """The input peaks with their ``charge`` and ``envelope_id`` (null outside every
        envelope), as in ``peaks.parquet``."""
        import pyarrow as pa

        outside = self.peak_envelope_id < 0
        return pa.table(
            {
                "mz": self.peak_mz,
                "intensity": self.peak_intensity,
                "charge": pa.array(self.peak_charge, pa.int32(), mask=outside),
                "envelope_id": pa.array(
                    np.where(outside, 0, self.peak_envelope_id), pa.uint32(), mask=outside
                ),
            }
        )

    @classmethod
    def _from_run(cls, result: RunResult, spectrum_index: int) -> Deconvolution:
        import pyarrow as pa
        import pyarrow.compute as pc

        if not _is_integer(spectrum_index):
            raise TypeError(f"spectrum_index must be an int, not {type(spectrum_index).__name__}")
        indices = result.spectra["spectrum_index"]
        if spectrum_index < 0 or not pc.any(pc.equal(indices, spectrum_index)).as_py():
            # An empty result would pass for a spectrum without envelopes.
            raise IndexError(
                f"spectrum_index {spectrum_index} is not in this result ({len(indices)} spectra; "
                "spectra left out by ms_levels or skipped as bad are not)"
            )
        features = result.features.filter(
            pc.equal(result.features["spectrum_index"], spectrum_index)
        )
        peaks = result.peaks.filter(pc.equal(result.peaks["spectrum_index"], spectrum_index))
        # Envelope ids count through the run; here they count from the spectrum's first.
        first = pc.min(features["envelope_id"]).as_py() or 0

        def column(table: pyarrow.Table, name: str) -> np.ndarray:
            return table[name].to_numpy()

        envelope = pc.subtract(peaks["envelope_id"].cast(pa.int64()), first)
        return cls(
            envelope_id=(column(features, "envelope_id") - first).astype(np.uint32),
            neutral_mass=column(features, "neutral_mass"),
            mz=column(features, "mz"),
            charge=column(features, "charge"),
            intensity=column(features, "intensity"),
            score=column(features, "score"),
            n_peaks=column(features, "n_peaks"),
            most_abundant_mass=column(features, "most_abundant_mass"),
            average_mass=column(features, "average_mass"),
            peak_mz=column(peaks, "mz"),
            peak_intensity=column(peaks, "intensity"),
            peak_charge=pc.fill_null(peaks["charge"], 0).to_numpy(),
            peak_envelope_id=pc.fill_null(envelope, -1).to_numpy(),
        )


def deconvolve(
    mz: Any,
    intensity: Any,
    *,
    charge_range: tuple[int, int] | None = None,
    isotope_model: Literal["averagine", "glycan", "glycopeptide", "nucleotide"] = "averagine",
    tolerance_ppm: float = 10.0,
    min_fit: float = 0.8,
    polarity: Literal["positive", "negative", "unknown"] = "positive",
    threads: int = 0,
) -> Deconvolution:
    """Deconvolves one centroided spectrum: isotopic envelopes with charge and monoisotopic
    neutral mass, exactly as ``mzforge run`` / :func:`process` deconvolve each spectrum's
    centroids (same settings, defaults and checks as ``--charge-range``, ``--isotope-model``,
    ``--tolerance-ppm``, ``--min-fit``), with the GIL released.

    ``mz`` (ascending) and ``intensity`` are 1-D array-likes of equal length: centroids, e.g.
    a centroided spectrum's arrays or what :func:`centroid` returned from profile data
    (``c = mzforge.centroid(mz, intensity); mzforge.deconvolve(c.mz, c.intensity)``).
    ``charge_range=None`` considers charges 1-8 and extends to 1-60 when the spectrum shows
    high-charge envelopes; ``polarity="negative"`` (e.g. ``spectrum.polarity``) fits
    deprotonated ions (negative charges); ``"unknown"`` is treated as positive, as a run does.
    A dense spectrum (50,000 centroids or more, e.g. a merged ion-mobility scan) is searched
    charge by charge on ``threads`` workers (0: every core; 1: the calling thread) from a pool
    built for the call, with the same result; smaller ones run on the calling thread.

    Raises :class:`InvalidParameterError` for bad settings and :class:`InvalidInputError` for
    arrays that cannot be a spectrum (different lengths, NaN or infinite values, m/z not
    ascending).
    """
    if polarity not in ("positive", "negative", "unknown"):
        raise InvalidParameterError(
            f"invalid parameter `polarity`: must be one of positive, negative, unknown, not {polarity!r}"
        )
    params = _params(
        charge_range=charge_range,
        isotope_model=isotope_model,
        tolerance_ppm=tolerance_ppm,
        min_fit=min_fit,
        threads=threads,
    )
    mz, intensity = _arrays(mz, intensity)
    columns = _mzforge.deconvolve(mz, intensity, params, polarity == "negative")
    envelope_id = np.arange(len(columns[0]), dtype=np.uint32)
    return Deconvolution(envelope_id, *columns[:8], mz, intensity, *columns[8:])


class RunResult:
    """What :func:`process` produced: ``spectra``, ``peaks`` and ``features`` as
    ``pyarrow.Table`` (the columns of the Parquet files ``mzforge run`` writes), the full ``params``, the run's
    ``summary`` (as in ``run.json``) and its ``warnings``; ``output`` is the result directory
    when one was written."""

    def __init__(self, native: _mzforge.RunResult) -> None:
        self._native: _mzforge.RunResult | None = native
        self.params: dict[str, Any] = json.loads(native.params_json)
        self.summary: dict[str, Any] = json.loads(native.summary_json)
        self.output: Path | None = Path(native.output) if native.output is not None else None
        self._tables: dict[str, pyarrow.Table] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickling (a result returned from a worker process): the tables go along, read
        whole, so the copy holds without the native result or the files of ``output``."""
        tables = {name: self._table(name) for name in ("spectra", "peaks", "features")}
        return {"params": self.params, "summary": self.summary, "output": self.output,
                "tables": tables}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._native = None
        self.params = state["params"]
        self.summary = state["summary"]
        self.output = state["output"]
        self._tables = dict(state["tables"])

    @property
    def warnings(self) -> list[str]:
        """Warnings of the run (at most 100 listed; ``summary["warnings_total"]`` counts all)."""
        return list(self.summary["warnings"])

    def _table(self, name: str) -> pyarrow.Table:
        if name not in self._tables:
            import pyarrow as pa

            native = None if self._native is None else getattr(self._native, name)
            if native is not None:
                # Zero-copy: the Arrow C stream hands Rust's buffers to pyarrow.
                self._tables[name] = pa.RecordBatchReader.from_stream(native).read_all()
            else:
                import pyarrow.parquet as pq

                assert self.output is not None
                self._tables[name] = pq.read_table(
                    self.output / f"{name}.parquet", memory_map=True
                )
        return self._tables[name]

    @property
    def spectra(self) -> pyarrow.Table:
        """One row per spectrum (``spectra.parquet``'s columns)."""
        return self._table("spectra")

    @property
    def peaks(self) -> pyarrow.Table:
        """One row per centroid (``peaks.parquet``'s columns)."""
        return self._table("peaks")

    @property
    def features(self) -> pyarrow.Table:
        """One row per isotopic envelope found by deconvolution (``features.parquet``'s
        columns)."""
        return self._table("features")

    def deconvolution(self, spectrum_index: int) -> Deconvolution:
        """The envelopes of one spectrum (by its ``spectrum_index``) and its peaks' charges, in
        the shape :func:`deconvolve` returns (envelope ids counted from 0 in the spectrum).
        ``IndexError`` for an index the result does not hold."""
        return Deconvolution._from_run(self, spectrum_index)

    def __repr__(self) -> str:
        s = self.summary
        where = f", output={str(self.output)!r}" if self.output else ""
        return (
            f"RunResult({_count(s['spectra_written'], 'spectrum', 'spectra')}, "
            f"{_count(s['peaks_written'], 'peak', 'peaks')}, "
            f"{_count(s['warnings_total'], 'warning', 'warnings')}{where})"
        )


def _count(n: int, one: str, many: str) -> str:
    """``1 spectrum``, ``2 spectra``."""
    return f"{n} {one if n == 1 else many}"


def _process(arguments: dict[str, Any]) -> RunResult:
    path = arguments.pop("path")
    out = arguments.pop("out", None)
    params = _params(arguments.pop("config", None), **arguments)
    native = _mzforge.process(os.fsdecode(path), params, None if out is None else os.fsdecode(out))
    return RunResult(native)


@_keywords_given(_process)
def process(
    path: StrPath,
    *,
    out: StrPath | None = None,
    config: StrPath | Mapping[str, Any] | None = None,
    threads: int = 0,
    ms_levels: Sequence[int] = (),
    signal: Literal["auto", "declared", "profile", "centroid"] = "auto",
    on_bad_spectrum: Literal["skip", "fail"] = "skip",
    min_snr: float = 0.0,
    min_intensity: float = 0.0,
    noise_window: float = 200.0,
    spacing_difference_gap: float = 4.0,
    spacing_difference: float = 1.5,
    max_missing: int = 1,
    deconvolve: bool = True,
    charge_range: tuple[int, int] | None = None,
    isotope_model: Literal["averagine", "glycan", "glycopeptide", "nucleotide"] = "averagine",
    tolerance_ppm: float = 10.0,
    min_fit: float = 0.8,
    batch_size: int = 64,
) -> RunResult:
    """Processes a whole file as ``mzforge run`` does: reads, tells profile from centroid,
    centroids and deconvolves, on ``threads`` worker threads (0: every core) with the GIL
    released. The keywords are the command line's options (``deconvolve=False`` is
    ``--no-deconvolve``; ``charge_range=(1, 60)`` is ``--charge-range 1-60`` and turns off the
    automatic extension to high charges).

    ``config`` is ``mzforge run --config``: a TOML file with the names of ``run.json``'s
    ``params`` (``[centroid] min_snr = 3``, ``[deconvolve] charge_max = 30``, ...), a JSON
    file in that layout (or a ``run.json``, to repeat its run), or a dict of the same shape.
    Its values replace the defaults; keywords given explicitly override it.

    Without ``out`` the tables stay in memory (``result.spectra``, ``.peaks``, ``.features``, handed to
    pyarrow without a copy). With ``out=DIR`` the run writes ``DIR/<stem>/`` with
    ``spectra.parquet``, ``peaks.parquet``, ``features.parquet`` and ``run.json``, exactly as
    ``mzforge run PATH --out DIR``, and the result's tables read those files back.

    Raises :class:`InputReadError` / :class:`InvalidInputError` for unreadable input (a file
    none of whose spectra can be decoded among it, whatever ``on_bad_spectrum`` says),
    :class:`InvalidParameterError` for bad parameters or a bad config, :class:`OutputError`
    when ``out`` cannot be written; the messages are the command line's.
    """
    raise AssertionError("replaced by _keywords_given")  # pragma: no cover
