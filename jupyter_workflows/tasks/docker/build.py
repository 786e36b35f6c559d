"""Building an image for a docker task, its log streamed line by line as the engine sends it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client import DockerFailure, LineSplitter, Relay, strip_ansi

# The classic builder marks a RUN step's stderr by wrapping it in red.
_RED, _RESET = "\x1b[91m", "\x1b[0m"
_COLOUR_RE = re.compile(r"(\x1b\[91m|\x1b\[0m)")


@dataclass
class BuildSpec:
    dockerfile: Path  # absolute
    context: Path  # absolute
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)


@dataclass
class Built:
    image_id: str
    tags: list[str]

    @property
    def reference(self) -> str:
        """What to run: the first tag, else the id."""
        return self.tags[0] if self.tags else self.image_id


class _BuildLog:
    """Splits the ``stream`` chunks into lines; a line with red in it is stderr."""

    def __init__(self, relay: Relay):
        self.relay = relay
        self.red = False  # inside a red span
        self.line_red = False  # the current line had red text
        self.splitter = LineSplitter(self._line)

    def feed(self, text: str) -> None:
        for piece in _split_colour(text):
            if piece == _RED:
                self.red = self.line_red = True
            elif piece == _RESET:
                self.red = False
                if not self.splitter.pending:  # the red text ended with its line
                    self.line_red = False
            else:
                self.splitter.feed(strip_ansi(piece))

    def _line(self, line: str) -> None:
        self.relay.line("stderr" if self.line_red else "stdout", line)
        self.line_red = self.red

    def flush(self) -> None:
        self.splitter.flush()


def _split_colour(text: str) -> list[str]:
    """Split at the colour switches, keeping each switch as a piece of its own."""
    return [piece for piece in _COLOUR_RE.split(text) if piece]


def build_image(api: Any, spec: BuildSpec, relay: Relay) -> Built:
    """Build (blocking: run it in a worker thread); the log goes to ``relay`` line by line.

    Raises DockerFailure for a build the engine refused or that failed in a step.
    """
    import docker

    log = _BuildLog(relay)
    image_id = None
    try:
        chunks = api.build(
            path=str(spec.context),
            dockerfile=str(spec.dockerfile),
            tag=spec.tags[0] if spec.tags else None,
            buildargs=spec.build_args or None,
            decode=True,
            rm=True,
            forcerm=True,  # remove intermediate containers of failed steps too
            network_mode="none",  # RUN steps get no network: there is no bridge
        )
        for chunk in chunks:
            if "error" in chunk:
                log.flush()
                raise _step_failure(chunk)
            if "stream" in chunk:
                log.feed(chunk["stream"])
            elif "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                image_id = str(chunk["aux"]["ID"])
            elif chunk.get("status") and not chunk.get("progressDetail"):
                relay.line("stdout", str(chunk["status"]))  # pulling a base image
        log.flush()
    except docker.errors.APIError as exc:
        if exc.status_code is not None and 400 <= exc.status_code < 500:
            explanation = exc.explanation or str(exc)
            message = f"docker build of {spec.dockerfile} refused: {explanation}"
            raise DockerFailure(message, retryable=False) from None
        raise
    except docker.errors.DockerException as exc:  # checked by the SDK before sending (a tag)
        raise DockerFailure(f"docker build of {spec.dockerfile}: {exc}", retryable=False) from None
    if image_id is None:
        raise DockerFailure(f"docker build of {spec.dockerfile} ended without an image id")
    _tag_more(api, image_id, spec.tags[1:], relay)
    return Built(image_id=image_id, tags=list(spec.tags))


def _step_failure(chunk: dict[str, Any]) -> DockerFailure:
    detail = chunk.get("errorDetail") or {}
    code = detail.get("code") if isinstance(detail, dict) else None
    message = str(chunk.get("error") or detail.get("message") or "unknown error").strip()
    return DockerFailure(
        f"docker build failed: {message}", exit_code=code if isinstance(code, int) else None
    )


def _tag_more(api: Any, image_id: str, tags: list[str], relay: Relay) -> None:
    """The engine's build takes one tag; the others are added here, logged as it would."""
    import docker
    from docker.utils import parse_repository_tag

    for tag in tags:
        repository, name = parse_repository_tag(tag)
        try:
            api.tag(image_id, repository, name)
        except docker.errors.APIError as exc:
            explanation = exc.explanation or str(exc)
            raise DockerFailure(f"cannot tag the image as '{tag}': {explanation}") from None
        relay.line("stdout", f"Successfully tagged {tag}")
