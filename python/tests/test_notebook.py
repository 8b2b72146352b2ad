"""The example notebook runs top to bottom."""

from __future__ import annotations

import pytest

from mzftest import PYTHON_DIR, require

nbformat = require("nbformat")
nbclient = require("nbclient")


@pytest.mark.parametrize("name", ["quickstart.ipynb"])
def test_example_notebook_executes(name, monkeypatch):
    # The kernel draws with matplotlib's inline backend (figures become PNG outputs).
    monkeypatch.delenv("MPLBACKEND", raising=False)
    examples = PYTHON_DIR / "examples"
    notebook = nbformat.read(examples / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(examples)}}
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plot was not drawn"
