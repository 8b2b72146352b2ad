"""GET /v1/parameters: the engine's defaults, `mzforge run --help`'s texts (checked against the
command line so the table cannot drift) and presets the engine accepts."""

from __future__ import annotations

import inspect
import re
import subprocess

import mzforge
from mzforge.api import params

from apitest import mzforge_cli


def _help() -> str:
    return subprocess.run([str(mzforge_cli()), "run", "--help"], capture_output=True, text=True,
                          check=True).stdout


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def test_every_cli_option_is_covered() -> None:
    options = set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)", _help(), re.M))
    assert "--min-snr" in options and "--out" in options  # the parse found the options
    covered = {p["cli"] for p in params.PARAMETERS.values() if p["cli"]} | params.NOT_PARAMETERS
    assert options - covered == set(), "options of `mzforge run` the API does not describe"
    assert covered - options == set(), "options the API names that `mzforge run` lacks"


def test_help_texts_are_the_command_lines() -> None:
    text = _norm(_help())
    for name, p in params.PARAMETERS.items():
        if p["cli"]:
            assert _norm(p["help"]) in text, name


def test_names_and_defaults_are_mzforge_process_keywords() -> None:
    sig = inspect.signature(mzforge.process)
    keywords = {n: v.default for n, v in sig.parameters.items() if n not in ("path", "out", "config")}
    assert set(params.PARAMETERS) == set(keywords)
    for name, default in keywords.items():
        expected = list(default) if isinstance(default, tuple) else default
        assert params.PARAMETERS[name]["default"] == expected, name


def test_endpoint_and_presets(api) -> None:
    body = api.client.get("/v1/parameters").json()
    assert body["defaults"] == params.defaults()
    assert body["help"]["signal"]["choices"] == ["auto", "declared", "profile", "centroid"]
    assert set(body["presets"]) == {"peptides", "intact_protein", "metabolomics"}
    for name, preset in body["presets"].items():
        assert params.resolve(preset) == {**params.defaults(), **preset}, name


def test_deconvolution_settings_without_deconvolution() -> None:
    # A form sends every field: left at their defaults they are dropped, so switching
    # deconvolution off alone is accepted (as the metabolomics preset does).
    every_field = {**params.defaults(), "deconvolve": False}
    assert params.resolve(every_field)["deconvolve"] is False
    assert params.engine_params_json(every_field)["deconvolve"]["enabled"] is False
    # Set to anything else they are refused, as `mzforge run --no-deconvolve --charge-range`
    # is (they were ignored without a word).
    for name, value in [("charge_range", [1, 60]), ("tolerance_ppm", 20.0), ("min_fit", 0.5),
                        ("isotope_model", "glycan")]:
        try:
            params.resolve({"deconvolve": False, name: value})
        except mzforge.InvalidParameterError as e:
            assert f"`{name}`: has no effect with deconvolve=False" in str(e)
        else:
            raise AssertionError(f"{name} without deconvolution was accepted")


def test_every_preset_runs_an_analysis(api) -> None:
    # The metabolomics preset (deconvolution off) was accepted and then failed in the worker,
    # which handed the engine every resolved setting, deconvolution's too.
    from apitest import shared

    up = api.upload(shared("profile/three_test_scans.mzML")).json()["id"]
    for name, preset in params.PRESETS.items():
        a = api.wait(api.analyse([up], preset).json()["id"])
        assert a["status"] == "succeeded", (name, a["error"])
        assert a["params"]["deconvolve"] == preset.get("deconvolve", True), name
        assert a["summary"]["spectra"] > 0, name
        assert (a["summary"]["features"] == 0) == (preset.get("deconvolve") is False), name
