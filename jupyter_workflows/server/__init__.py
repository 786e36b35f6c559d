"""The Jupyter server extension: the REST API the Workflows panel of JupyterLab talks to.

Enabled by ``jupyter-config/server-config/jupyter_workflows.json`` (installed with the
package). Only jupyter_server imports this subpackage; ``import jupyter_workflows`` never does.
"""

from __future__ import annotations

from typing import Any

from .. import __version__  # shown by `jupyter server extension list`

__all__ = ["__version__"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import WorkflowsExtension

    return [{"module": "jupyter_workflows.server", "app": WorkflowsExtension}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Load the extension into ``serverapp`` (what jupyter_server calls for a module)."""
    from .app import WorkflowsExtension

    WorkflowsExtension._load_jupyter_server_extension(serverapp)
