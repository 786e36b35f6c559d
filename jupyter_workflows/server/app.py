"""The server extension application: one ``WorkflowService`` per Jupyter server.

An ``ExtensionApp`` rather than a bare module so that the server's shutdown reaches
``stop_extension`` (runs still going are cancelled and recorded as cancelled, not left to be
found crashed) and so the run limits are configurable like any Jupyter setting::

    c.WorkflowsExtension.concurrency = 2
"""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp
from traitlets import Int

from .handlers import routes
from .service import WorkflowService


class WorkflowsExtension(ExtensionApp):
    """Registers the REST API under ``{base_url}jupyter-workflows/api/``."""

    name = "jupyter_workflows"
    load_other_extensions = True

    concurrency = Int(4, help="Runs started from the API that may run at once.").tag(config=True)
    max_waiting = Int(100, help="Runs that may wait for a free slot.").tag(config=True)

    service: WorkflowService

    def initialize_settings(self) -> None:
        serverapp = self.serverapp
        assert serverapp is not None
        contents = getattr(serverapp, "contents_manager", None)
        self.service = WorkflowService(
            serverapp.root_dir,
            concurrency=self.concurrency,
            max_waiting=self.max_waiting,
            allow_hidden=bool(getattr(contents, "allow_hidden", False)),
        )
        self.log.info("jupyter-workflows: REST API for workflows under %s", self.service.root)

    def initialize_handlers(self) -> None:
        self.handlers.extend(routes(self.service))

    def current_activity(self) -> bool:
        """Runs in progress keep an idle-culled server alive."""
        return self.service.active()

    async def stop_extension(self) -> None:
        await self.service.shutdown()
