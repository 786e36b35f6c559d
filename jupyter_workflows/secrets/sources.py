"""Where secrets come from: the environment, a secrets file, a command, the system keyring.

A name is looked up in this order, the first source that has it wins:

1. the environment: ``WORKFLOW_SECRET_<NAME>``, then plain ``NAME`` when the workflow lists
   the name under its top-level ``secrets:``;
2. the secrets file: ``workflows/secrets.env`` (or ``secrets.file`` in the project's config),
   ``NAME=value`` lines, refused when its group or others may read it;
3. a command: ``secrets.command`` in the config, e.g. ``"pass show {name}"``, run without a
   shell with ``{name}`` replaced; its standard output (without the final newline) is the
   value, a non-zero exit means "not here";
4. the system keyring through the ``keyring`` package, when it is installed (service
   ``jupyter-workflows``, or ``secrets.keyringService``; ``secrets.keyring: false`` turns it
   off).

The config section (``workflows/config.json``)::

    "secrets": {"file": "~/.config/myproject/secrets.env",
                "provider": "command", "command": "pass show myproject/{name}",
                "keyring": true, "keyringService": "myproject"}

Nothing here ever puts a value in a message.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SecretError

__all__ = [
    "DEFAULT_FILE",
    "ENV_PREFIX",
    "KEYRING_SERVICE",
    "Found",
    "SecretSources",
    "SecretsConfig",
    "read_secrets_file",
]

ENV_PREFIX = "WORKFLOW_SECRET_"
DEFAULT_FILE = Path("workflows") / "secrets.env"
KEYRING_SERVICE = "jupyter-workflows"
COMMAND_TIMEOUT = 30.0


@dataclass(frozen=True)
class Found:
    """A secret found: its value and where it came from (``source``: env, file, command,
    keyring; ``where``: the variable, file, command or keyring service, for people)."""

    name: str
    value: str = field(repr=False)
    source: str
    where: str


@dataclass(frozen=True)
class SecretsConfig:
    """The ``secrets`` section of the project's configuration."""

    file: Path
    command: str | None = None
    keyring: bool = True
    keyring_service: str = KEYRING_SERVICE

    @classmethod
    def for_project(cls, root: Path) -> SecretsConfig:
        """Read it from the project at ``root``; ConfigError naming the bad key."""
        from ..project import config_file, read_config

        section = read_config(root).get("secrets", {})
        path = config_file(root)
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: 'secrets' must be an object")

        def text(key: str) -> str | None:
            value = section.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{path}: 'secrets.{key}' must be a non-empty string")
            return value

        provider = text("provider")
        command = text("command")
        if provider not in (None, "command"):
            raise ConfigError(
                f"{path}: 'secrets.provider' must be \"command\" (the environment, the "
                f"secrets file and the keyring need no provider), got {provider!r}"
            )
        if provider == "command" and command is None:
            raise ConfigError(f"{path}: 'secrets.provider' is \"command\": give secrets.command")
        if command is not None and "{name}" not in command:
            raise ConfigError(
                f"{path}: 'secrets.command' must contain {{name}}, where the secret's name goes "
                f'(e.g. "pass show {{name}}"), got {command!r}'
            )
        keyring = section.get("keyring", True)
        if not isinstance(keyring, bool):
            raise ConfigError(f"{path}: 'secrets.keyring' must be true or false")
        file = text("file")
        where = Path(os.path.expanduser(file)) if file else DEFAULT_FILE
        return cls(
            file=where if where.is_absolute() else Path(root) / where,
            command=command,
            keyring=keyring,
            keyring_service=text("keyringService") or KEYRING_SERVICE,
        )


class SecretSources:
    """Looks names up in the sources, in order. ``env`` defaults to ``os.environ``;
    ``declared`` are the names a workflow lists under ``secrets:`` (plain ``NAME`` counts
    for them). A source is read at most once (the file) or once per name (command, keyring).
    """

    def __init__(
        self,
        root: Path,
        *,
        env: Mapping[str, str] | None = None,
        declared: Iterable[str] = (),
        config: SecretsConfig | None = None,
    ):
        self.root = Path(root)
        self.env = os.environ if env is None else env
        self.declared = set(declared)
        self.config = config or SecretsConfig.for_project(self.root)
        self._file: dict[str, str] | None = None
        self._notes: dict[str, dict[str, str]] = {}  # name -> source -> why it had not
        self._keyring: Any = None

    # -- lookup ----------------------------------------------------------------------------
    def lookup(self, name: str) -> Found | None:
        """Where ``name`` resolves, or None. SecretError when the secrets file cannot be used
        (readable by others, unreadable, malformed)."""
        for source in (self._from_env, self._from_file, self._from_command, self._from_keyring):
            found = source(name)
            if found is not None:
                return found
        return None

    def looked_in(self, name: str) -> list[str]:
        """Where ``name`` was looked for, each with why it was not there when that is known
        (call after ``lookup``)."""
        notes = self._notes.get(name, {})
        places = [f"${ENV_PREFIX}{name}"]
        if name in self.declared:
            places.append(f"${name}")
        file_note = "" if self.config.file.exists() else " (no such file)"
        places.append(self.file_shown + file_note)
        if self.config.command:
            places.append(f"command {shlex.join(self._argv(name))!r}" + _note(notes, "command"))
        places.append(f"keyring service {self.config.keyring_service!r}" + _note(notes, "keyring"))
        return places

    def listable(self) -> list[Found]:
        """The secrets the sources can list by name: ``WORKFLOW_SECRET_*`` variables and the
        secrets file's entries (a command or the keyring can only be asked for a name)."""
        found: dict[str, Found] = {}
        for key in sorted(self.env):
            if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX):
                name = key[len(ENV_PREFIX) :]
                found[name] = Found(name, self.env[key], "env", f"${key}")
        for name, value in self._file_entries().items():
            found.setdefault(name, Found(name, value, "file", self.file_shown))
        return list(found.values())

    # -- the sources ------------------------------------------------------------------------
    def _from_env(self, name: str) -> Found | None:
        key = ENV_PREFIX + name
        if key in self.env:
            return Found(name, self.env[key], "env", f"${key}")
        if name in self.declared and name in self.env:
            return Found(name, self.env[name], "env", f"${name}")
        return None

    def _from_file(self, name: str) -> Found | None:
        entries = self._file_entries()
        if name in entries:
            return Found(name, entries[name], "file", self.file_shown)
        return None

    def _file_entries(self) -> dict[str, str]:
        if self._file is None:
            self._file = read_secrets_file(self.config.file)
        return self._file

    @property
    def file_shown(self) -> str:
        """The secrets file, relative to the project root when inside it."""
        try:
            return str(self.config.file.relative_to(self.root))
        except ValueError:
            return str(self.config.file)

    def _argv(self, name: str) -> list[str]:
        assert self.config.command is not None
        return [word.replace("{name}", name) for word in shlex.split(self.config.command)]

    def _from_command(self, name: str) -> Found | None:
        if not self.config.command:
            return None
        argv = self._argv(name)
        try:
            done = subprocess.run(
                argv,
                cwd=self.root,
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=COMMAND_TIMEOUT,
            )
        except FileNotFoundError:
            self._note(name, "command", f"'{argv[0]}' not found")
            return None
        except subprocess.TimeoutExpired:
            self._note(name, "command", f"no answer within {COMMAND_TIMEOUT:.0f} s")
            return None
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            self._note(
                name, "command", f"exit {done.returncode}" + (f": {said[0]}" if said else "")
            )
            return None
        value = done.stdout.decode("utf-8", "replace").removesuffix("\n").removesuffix("\r")
        if not value:
            self._note(name, "command", "printed nothing")
            return None
        return Found(name, value, "command", f"command {shlex.join(argv)!r}")

    def _from_keyring(self, name: str) -> Found | None:
        if not self.config.keyring:
            self._note(name, "keyring", "turned off: secrets.keyring is false")
            return None
        try:
            import keyring  # optional: only when installed
        except ImportError:
            self._note(name, "keyring", "the keyring package is not installed")
            return None
        service = self.config.keyring_service
        try:
            value = keyring.get_password(service, name)
        except Exception as exc:  # no backend, a locked keyring: this source is unusable
            self._note(name, "keyring", f"unusable: {type(exc).__name__}")
            return None
        if value is None:
            return None
        return Found(name, value, "keyring", f"keyring service {service!r}")

    def _note(self, name: str, source: str, why: str) -> None:
        self._notes.setdefault(name, {})[source] = why


def read_secrets_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of a secrets file ({} when there is none).

    Blank lines and ``#`` comments are skipped, ``export`` before a name is allowed, a value
    in single quotes is taken as written and one in double quotes has ``\\n``, ``\\"`` and
    ``\\\\`` escapes; nothing is expanded. SecretError when the group or others may read the
    file (it must be ``chmod 600``), when it cannot be read, or on a line that is no
    ``NAME=value`` (its number is given, never its text).
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SecretError(f"secrets file {path}: cannot be read: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRGRP | stat.S_IROTH):
        mode = stat.S_IMODE(info.st_mode)
        raise SecretError(
            f"secrets file {path} is readable by {_who(info.st_mode)} (mode {mode:04o}): "
            f"refused. Make it private: chmod 600 {shlex.quote(str(path))}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"secrets file {path}: cannot be read: {exc}") from None
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, equals, value = stripped.removeprefix("export ").partition("=")
        name = name.strip()
        if not equals or not name or not all(c.isalnum() or c in "_-" for c in name):
            raise SecretError(
                f"secrets file {path}, line {number}: expected NAME=value (names use letters, "
                "digits, '-' and '_')"
            )
        entries[name] = _unquote(value.strip())
    return entries


def _note(notes: dict[str, str], source: str) -> str:
    return f" ({notes[source]})" if source in notes else ""


def _who(mode: int) -> str:
    group, others = mode & stat.S_IRGRP, mode & stat.S_IROTH
    return "its group and others" if group and others else "its group" if group else "others"


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner, out, index = value[1:-1], [], 0
        while index < len(inner):
            char = inner[index]
            if char == "\\" and index + 1 < len(inner):
                following = inner[index + 1]
                out.append({"n": "\n", "t": "\t"}.get(following, following))
                index += 2
                continue
            out.append(char)
            index += 1
        return "".join(out)
    return value
