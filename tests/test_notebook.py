"""notebooks/latent_space.ipynb runs end to end (its tiny setting), so it cannot rot. (notebooks/stylegan2_w_space.ipynb
runs in test_stylegan2's W-space test, on that test's tiny run.)"""
import os

import nbformat
from nbclient import NotebookClient

from conftest import REPO


def test_latent_space_notebook_runs(data_dir, monkeypatch):
  monkeypatch.setenv("GAN_JAX_NOTEBOOK_TINY", "1")
  monkeypatch.setenv("GAN_JAX_NOTEBOOK_DATA_DIR", data_dir)
  monkeypatch.delenv("GAN_JAX_NOTEBOOK_WORKDIR", raising=False)
  notebook = nbformat.read(os.path.join(REPO, "notebooks", "latent_space.ipynb"), as_version=4)
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": REPO}}).execute()  # Raises on any cell's error.
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
  text = "".join(o.get("text", "") for o in outputs)
  assert "mean squared error per pixel" in text and "pixel std across a row" in text
  assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # Interpolation, truncation, inversion.
