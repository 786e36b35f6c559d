"""jupyter-workflows: load, validate and run workflows of tasks, from Jupyter or the shell."""

from __future__ import annotations

__version__ = "0.1.0"
