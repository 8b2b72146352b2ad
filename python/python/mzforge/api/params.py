"""Analysis parameters: the names of :func:`mzforge.process`, their help (the texts of
``mzforge run --help``; ``tests/api/test_params.py`` checks that every option there is covered
here and that the texts still match), presets, and validation with the engine's own rules
(``_mzforge.make_params``)."""

from __future__ import annotations

import json
from typing import Any

from .. import InvalidParameterError, _api, _mzforge

# name -> type, default, help, command-line flag (None: not a `mzforge run` option), choices.
PARAMETERS: dict[str, dict[str, Any]] = {
    "threads": {
        "type": "integer", "default": 0, "cli": "--threads",
        "help": "Worker threads",
        "note": "0: the server's setting (MZFORGE_WORKER_THREADS); results do not depend on it",
    },
    "ms_levels": {
        "type": "array[integer]", "default": [], "cli": "--ms-levels",
        "help": "MS levels to keep, comma separated, e.g. `1` or `1,2`",
        "note": "a JSON list such as [1, 2]; [] keeps all",
    },
    "min_snr": {
        "type": "number", "default": 0.0, "cli": "--min-snr",
        "help": "Minimum signal-to-noise of a centroid and of the points it is fitted on; "
        "0 keeps every local maximum",
    },
    "min_intensity": {
        "type": "number", "default": 0.0, "cli": "--min-intensity",
        "help": "Minimum apex intensity of a centroid",
    },
    "noise_window": {
        "type": "number", "default": 200.0, "cli": "--noise-window",
        "help": "Width of the noise-estimation window in m/z units",
    },
    "signal": {
        "type": "string", "default": "auto", "cli": "--signal",
        "choices": ["auto", "declared", "profile", "centroid"],
        "help": "How to decide profile vs centroid",
        "note": "auto: the data are checked against the declaration and win where they disagree",
    },
    "on_bad_spectrum": {
        "type": "string", "default": "skip", "cli": "--on-bad-spectrum",
        "choices": ["skip", "fail"],
        "help": "What to do with a spectrum that cannot be read or decoded",
    },
    "deconvolve": {
        "type": "boolean", "default": True, "cli": "--no-deconvolve",
        "help": "Skip charge-state deconvolution (no features.parquet rows, no charges on peaks)",
        "note": "false is --no-deconvolve",
    },
    "charge_range": {
        "type": "array[integer, integer] | null", "default": None, "cli": "--charge-range",
        "help": "Charges to consider, e.g. `1-8` or `1-60` for intact proteins; an explicit "
        "range turns off the automatic extension",
        "note": "a JSON pair [min, max]; null: 1-8, extended to 1-60 for spectra that show "
        "high-charge envelopes",
    },
    "isotope_model": {
        "type": "string", "default": "averagine", "cli": "--isotope-model",
        "choices": ["averagine", "glycan", "glycopeptide", "nucleotide"],
        "help": "Isotope-pattern model",
    },
    "tolerance_ppm": {
        "type": "number", "default": 10.0, "cli": "--tolerance-ppm",
        "help": "m/z tolerance between observed and expected isotope peaks, in ppm",
    },
    "min_fit": {
        "type": "number", "default": 0.8, "cli": "--min-fit",
        "help": "Minimum fit (0-1) between an envelope and its isotope pattern",
    },
    "spacing_difference_gap": {
        "type": "number", "default": 4.0, "cli": None,
        "help": "PeakPickerHiRes: largest gap between raw points, in multiples of the local "
        "spacing, a peak may span",
    },
    "spacing_difference": {
        "type": "number", "default": 1.5, "cli": None,
        "help": "PeakPickerHiRes: largest spacing, in multiples of the local spacing, between "
        "the points a peak is fitted on",
    },
    "max_missing": {
        "type": "integer", "default": 1, "cli": None,
        "help": "PeakPickerHiRes: points that may be missing on each side of a peak",
    },
    "batch_size": {
        "type": "integer", "default": 64, "cli": None,
        "help": "Spectra per work batch (speed only)",
    },
}

# `mzforge run` options that are not analysis parameters (where results go, output formats,
# terminal output, how many inputs run at once, and the reading limits that guard against
# hostile files, which the API keeps at the engine's defaults).
NOT_PARAMETERS = {
    "--out", "--keep-folders", "--config", "--mzml", "--mzml-peaks", "--json", "--quiet", "--help",
    "--inputs-at-once",
    "--max-points-per-spectrum", "--max-array-bytes", "--max-spectra", "--max-spectrum-bytes",
}

PRESETS: dict[str, dict[str, Any]] = {
    # Tryptic peptides: charges 1-8 and the averagine model (the defaults), a little noise cut.
    "peptides": {"min_snr": 1.0, "charge_range": [1, 8], "isotope_model": "averagine"},
    # Intact proteins: high charges, wider tolerance.
    "intact_protein": {"charge_range": [1, 60], "tolerance_ppm": 20.0, "min_fit": 0.7},
    # Small molecules: MS1, mostly singly charged, no peptide isotope model.
    "metabolomics": {"ms_levels": [1], "deconvolve": False, "min_snr": 3.0},
}

_NUMBER = (int, float)


def defaults() -> dict[str, Any]:
    return {name: p["default"] for name, p in PARAMETERS.items()}


def _check_type(name: str, value: Any) -> None:
    kind = PARAMETERS[name]["type"]
    ok: bool
    if kind == "number":
        ok = isinstance(value, _NUMBER) and not isinstance(value, bool)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "string":
        ok = isinstance(value, str)
    elif kind == "array[integer]":
        ok = isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
    else:  # charge range
        ok = value is None or (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        )
    if not ok:
        raise InvalidParameterError(f"{name} must be {kind}, not {json.dumps(value)}")
    if name in _LIMITS and value is not None:
        lo, hi = _LIMITS[name]
        values = value if isinstance(value, list) else [value]
        if any(not lo <= v <= hi for v in values):
            raise InvalidParameterError(f"{name} must be between {lo} and {hi}, not {json.dumps(value)}")


# Bounds the engine does not need but a shared server does (threads and batch size cost memory).
_LIMITS = {"threads": (0, 256), "batch_size": (1, 65536), "max_missing": (0, 1000),
           "ms_levels": (1, 255), "charge_range": (1, 1000)}


def resolve(given: Any) -> dict[str, Any]:
    """The full parameter set (defaults + ``given``), validated by the engine; raises
    :class:`mzforge.InvalidParameterError` with a message naming the parameter."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise InvalidParameterError("params must be a JSON object")
    unknown = sorted(set(given) - set(PARAMETERS))
    if unknown:
        raise InvalidParameterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
            f" (known: {', '.join(PARAMETERS)})"
        )
    for name, value in given.items():
        _check_type(name, value)
    resolved = {**defaults(), **given}
    try:
        engine_params(resolved)
    except (OverflowError, TypeError, ValueError) as e:
        if isinstance(e, InvalidParameterError):
            raise
        raise InvalidParameterError(str(e)) from None
    return resolved


def process_keywords(resolved: dict[str, Any]) -> dict[str, Any]:
    """The keywords of :func:`mzforge.process` for a full set. Without deconvolution its
    settings are left out where they hold their defaults (a form sends every field); set to
    anything else they are refused, as :func:`mzforge.process` and ``mzforge run
    --no-deconvolve`` refuse them."""
    kwargs = dict(resolved)
    if kwargs.get("deconvolve") is False:
        for name in _api._DECONVOLUTION:
            if name in kwargs and kwargs[name] == PARAMETERS[name]["default"]:
                del kwargs[name]
    if kwargs.get("charge_range") is not None:
        kwargs["charge_range"] = tuple(kwargs["charge_range"])
    return kwargs


def engine_params(resolved: dict[str, Any]) -> _mzforge.Params:
    """The engine's parameters for a full set (see :func:`process_keywords`)."""
    return _api._params(**process_keywords(resolved))


def engine_params_json(resolved: dict[str, Any]) -> dict[str, Any]:
    """The engine's PipelineParams (``run.json``'s ``params``): what an S3 analysis request
    carries."""
    return json.loads(engine_params(resolved).to_json())


def describe() -> dict[str, Any]:
    help_ = {}
    for name, p in PARAMETERS.items():
        entry = {"type": p["type"], "default": p["default"], "help": p["help"]}
        if "note" in p:
            entry["note"] = p["note"]
        if "choices" in p:
            entry["choices"] = p["choices"]
        help_[name] = entry
    return {"defaults": defaults(), "help": help_, "presets": PRESETS}
