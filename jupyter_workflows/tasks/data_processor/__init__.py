"""``data_processor``: a script run once per matching file, in parallel; JSON in, JSON out.

Every file matching ``input.path`` (a glob relative to the project root, ``**`` recurses) is
read by its format: ``.json`` parsed, ``.csv`` as a list of row objects (the header row gives
the keys), anything else as text. The processor (``processor.script``: node for javascript, tsx
for TypeScript files, the task's python for python, as the javascript and python task types
choose them) runs once per file in the task's working directory with, besides the task's
environment:

    INPUT_DATA  the data as JSON (text becomes a JSON string). LEFT OUT when the JSON is over
                100 KiB: Linux refuses to start a process with one environment string over
                128 KiB (E2BIG), so large inputs are read from INPUT_FILE or stdin.
    INPUT_FILE  a temporary file holding the same JSON, whatever its size
    INPUT_PATH  the input file's absolute path
    INPUT_NAME  its name without extension (what ``${input}`` is in ``output.path``)

and the same JSON on stdin. The processor prints one JSON value on stdout (log messages go to
stderr, which is streamed to the task's log prefixed with the file's name). With ``output``,
that value is written pretty-printed to ``output.path`` rendered with ``${input}``. Inputs,
outputs, the processor and ``cwd`` follow the project's path policy (``tasks.paths``): a path,
or a matched file, that resolves outside the project and its allowed folders is refused.
Without ``output`` it is the item's ``result``.

Up to ``max_parallel`` files are processed at once. One bad file (unreadable, processor exits
non-zero, prints something that is not JSON) fails its item and the others still run; the task
fails when any item failed. ``result`` is ``{processed, succeeded, failed, items: [{input,
output, status, error}]}``. A pattern that matches no file fails the task: an empty match is
far more often a wrong path than a folder meant to be empty.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..base import DeferredTaskType, ModelAt, models_from

if TYPE_CHECKING:
    from .model import DataProcessorTask, FileInput, FileOutput, Processor  # noqa: F401

__getattr__ = models_from(
    "jupyter_workflows.tasks.data_processor.model",
    "FileInput",
    "Processor",
    "FileOutput",
    "DataProcessorTask",
)


class DataProcessorType(DeferredTaskType):
    name = "data_processor"
    model = ModelAt("jupyter_workflows.tasks.data_processor.model:DataProcessorTask")
    implementation = "jupyter_workflows.tasks.data_processor.runner:DataProcessorRunner"
    path_keys = ("processor.script", "output.path", "cwd")

    @classmethod
    def path_fields(cls, task: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
        from ..paths import glob_folder

        yield from super().path_fields(task)
        given = task.get("input")
        pattern = given.get("path") if isinstance(given, Mapping) else None
        if isinstance(pattern, str):
            yield "input.path", glob_folder(pattern)  # the folder the pattern searches
