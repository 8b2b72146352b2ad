"""`process(config=...)`: the file `mzforge run --config` reads (or a run.json, or a dict), with
keywords overriding it as flags do."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mzforge

from mzftest import FIXTURES, run_cli

SIM = FIXTURES / "sim_profile.mzML"
TOML = """\
ms_levels = [1]
[centroid]
min_snr = 5.0
[centroid.noise]
window_mz = 100.0
[deconvolve]
charge_max = 4
min_fit = 0.85
"""


def cli_params(tmp_path, *flags):
    out = tmp_path / "cli"
    done = run_cli("run", SIM, "--out", out, "--quiet", *flags)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "sim_profile" / "run.json").read_text())["params"]


def test_a_toml_config_and_keyword_overrides_give_the_command_lines_parameters(tmp_path):
    config = tmp_path / "params.toml"
    config.write_text(TOML)
    result = mzforge.process(SIM, config=config, min_snr=7, tolerance_ppm=4.0)
    expected = cli_params(tmp_path, "--config", config, "--min-snr", "7", "--tolerance-ppm", "4")
    assert result.params == expected
    assert result.params["centroid"]["min_snr"] == 7.0  # the keyword wins
    assert result.params["centroid"]["noise"]["window_mz"] == 100.0  # the file holds
    assert result.params["deconvolve"]["charge_max"] == 4
    assert result.params["ms_levels"] == [1]
    assert set(result.spectra["ms_level"].to_pylist()) == {1}
    # The tables are those of the same run without a config.
    plain = mzforge.process(
        SIM, ms_levels=[1], min_snr=7, noise_window=100.0, tolerance_ppm=4.0, min_fit=0.85
    )
    assert plain.params["deconvolve"]["charge_max"] == 8
    assert result.peaks.equals(plain.peaks)


def test_a_keyword_equal_to_its_default_still_overrides_the_config(tmp_path):
    config = tmp_path / "params.toml"
    config.write_text(TOML)
    result = mzforge.process(SIM, config=config, min_snr=0.0, ms_levels=())
    assert result.params["centroid"]["min_snr"] == 0.0
    assert result.params["ms_levels"] == []
    assert result.params["centroid"]["noise"]["window_mz"] == 100.0


def test_a_dict_a_json_file_and_a_run_json_are_the_same_config(tmp_path):
    config = tmp_path / "params.toml"
    config.write_text(TOML)
    from_toml = mzforge.process(SIM, config=config, deconvolve=False)
    as_dict = {"ms_levels": [1], "centroid": {"min_snr": 5.0, "noise": {"window_mz": 100.0}},
               "deconvolve": {"charge_max": 4, "min_fit": 0.85}}
    from_dict = mzforge.process(SIM, config=as_dict, deconvolve=False)
    (tmp_path / "params.json").write_text(json.dumps(as_dict))
    from_json = mzforge.process(SIM, config=tmp_path / "params.json", deconvolve=False)
    assert from_toml.params == from_dict.params == from_json.params
    assert from_toml.params["deconvolve"]["enabled"] is False
    # A run.json repeats its run.
    written = mzforge.process(SIM, config=as_dict, out=tmp_path / "out")
    again = mzforge.process(SIM, config=written.output / "run.json")
    assert again.params == written.params
    assert again.peaks.equals(written.peaks) and again.features.equals(written.features)


def test_bad_configs_raise_invalid_parameter_naming_the_problem(tmp_path):
    config = tmp_path / "params.toml"
    config.write_text("[centroid]\nmin_sn = 1\n")
    with pytest.raises(mzforge.InvalidParameterError) as info:
        mzforge.process(SIM, config=config)
    message = str(info.value)
    assert message.startswith(f"invalid config {config}: ") and "min_sn" in message
    done = run_cli("run", SIM, "--out", tmp_path / "o", "--quiet", "--config", config)
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: {message}"  # the command line's message
    # Values are checked after the keywords are applied, as the command line does.
    config.write_text("[centroid]\nmin_snr = -1\n")
    with pytest.raises(mzforge.InvalidParameterError) as info:
        mzforge.process(SIM, config=config)
    # Named by its path in the config, as the command line names it.
    message = str(info.value)
    assert message == f"invalid parameter `centroid.min_snr` in {config}: must be a finite number >= 0"
    done = run_cli("run", SIM, "--out", tmp_path / "o", "--quiet", "--config", config)
    assert done.returncode == 1 and done.stderr.strip() == f"error: {message}"
    assert mzforge.process(SIM, config=config, min_snr=2).params["centroid"]["min_snr"] == 2.0
    with pytest.raises(mzforge.InvalidParameterError, match="unknown field `thread`"):
        mzforge.process(SIM, config={"thread": 2})
    with pytest.raises(mzforge.InvalidParameterError, match="invalid config .*params.json"):
        (tmp_path / "params.json").write_text("{not json")
        mzforge.process(SIM, config=tmp_path / "params.json")
    with pytest.raises(FileNotFoundError):
        mzforge.process(SIM, config=tmp_path / "missing.toml")
    # A file that is not text (a UnicodeDecodeError before).
    (tmp_path / "latin1.toml").write_bytes(b"# r\xe9glages\n[centroid]\nmin_snr = 1\n")
    with pytest.raises(mzforge.InvalidParameterError, match="latin1.toml: not UTF-8 text"):
        mzforge.process(SIM, config=tmp_path / "latin1.toml")
    with pytest.raises(TypeError):
        mzforge.process(SIM, config=config, min_snrr=2)  # a misspelt keyword is an error


def test_a_dict_config_may_hold_numpy_numbers():
    # As the keywords may: json.dumps refused them ("Object of type int64 is not JSON
    # serializable").
    plain = {"threads": 2, "ms_levels": [1], "centroid": {"min_snr": 3.0}}
    numpy = {
        "threads": np.int64(2),
        "ms_levels": np.array([1]),
        "centroid": {"min_snr": np.float32(3)},
    }
    assert mzforge.process(SIM, config=numpy).params == mzforge.process(SIM, config=plain).params
    with pytest.raises(TypeError, match="invalid config mapping: a set is not a parameter value"):
        mzforge.process(SIM, config={"ms_levels": {1}})
