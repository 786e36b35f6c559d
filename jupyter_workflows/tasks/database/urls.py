"""Database connection URLs: parse them, and keep their passwords out of every message.

Accepted forms (the scheme is case-insensitive)::

    sqlite:///relative/path.db      relative to the project root
    sqlite:////absolute/path.db     absolute
    sqlite:///:memory:              a private in-memory database (same forms for duckdb://)
                                    (a file must be inside the project or an allowed folder:
                                    ``tasks.paths``)
    postgresql://user:pass@host:port/db?options   also postgres://, handed to libpq as written

``redact(url)`` hides the password (``user:***@host``, ``password=***``); a ``Connection``'s
``scrub(text)`` also removes the literal password (encoded or not) from any text, such as a
driver's exception message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from .failures import DatabaseFailure

SCHEMES = {"sqlite": "sqlite", "duckdb": "duckdb", "postgresql": "postgresql"}
SCHEMES["postgres"] = "postgresql"
MEMORY = ":memory:"
EXPECTED = "expected sqlite:///path, duckdb:///path or postgresql://user@host/db"

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
# password=... as a URL query parameter or a libpq keyword (quoted or not).
_QUERY_PASSWORD_RE = re.compile(r"(?i)([?&]password=)[^&#\s]*")
_KEYWORD_PASSWORD_RE = re.compile(r"(?i)\b(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def _split_auth(url: str) -> tuple[str, str, str] | None:
    """(head up to '://', userinfo, rest from '@') or None when the URL has no userinfo.

    The userinfo ends at the *last* '@' so that an unencoded '@', '/' or '?' in a password is
    still hidden; a URL with '@' in its query string is over-redacted, never under-redacted.
    """
    match = _SCHEME_RE.match(url)
    if not match:
        return None
    rest = url[match.end() :]
    at = rest.rfind("@")
    if at < 0:
        return None
    return url[: match.end()], rest[:at], rest[at:]


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (userinfo, ?password= or password=...)."""
    parts = _split_auth(url)
    if parts is not None:
        head, auth, rest = parts
        if ":" in auth:
            url = f"{head}{auth.split(':', 1)[0]}:***{rest}"
    url = _QUERY_PASSWORD_RE.sub(r"\1***", url)
    if not _SCHEME_RE.match(url):
        url = _KEYWORD_PASSWORD_RE.sub(r"\1***", url)
    return url


def passwords(url: str) -> set[str]:
    """Every spelling of the password(s) in ``url``: as written and percent-decoded."""
    found: set[str] = set()
    parts = _split_auth(url)
    if parts is not None and ":" in parts[1]:
        found.add(parts[1].split(":", 1)[1])
    for match in _QUERY_PASSWORD_RE.finditer(url):
        found.add(match.group(0)[len(match.group(1)) :])
    for match in _KEYWORD_PASSWORD_RE.finditer(url):
        found.add(match.group(2).strip("'"))
    found |= {unquote(secret) for secret in found}
    found.discard("")
    found.discard("***")
    return found


@dataclass(frozen=True)
class Connection:
    """A parsed connection: which backend, what to open, and how to name it in messages."""

    scheme: str  # "sqlite", "duckdb" or "postgresql"
    target: str  # a file path or ":memory:" (sqlite, duckdb), the URL itself (postgresql)
    display: str  # the URL without its password: the only form that appears in messages
    secrets: frozenset[str] = frozenset()

    @property
    def in_memory(self) -> bool:
        return self.target == MEMORY

    def scrub(self, text: str) -> str:
        """``text`` without the password, in any spelling, and with URLs in it redacted."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return _QUERY_PASSWORD_RE.sub(r"\1***", text)

    def with_secrets(self, more: set[str]) -> Connection:
        return Connection(self.scheme, self.target, self.display, self.secrets | more)


def parse_connection(url: str, resolve: Callable[[str], Path]) -> Connection:
    """Parse a rendered connection string; raises DatabaseFailure saying what was expected.

    ``resolve`` turns a relative file path into one under the project root.
    """
    secrets = frozenset(passwords(url))
    display = redact(url)
    for secret in secrets:  # whatever redact() could not see in a malformed URL
        display = display.replace(secret, "***")
    if not url.strip():
        raise DatabaseFailure("database connection is empty")
    match = _SCHEME_RE.match(url.strip())
    if not match:
        raise DatabaseFailure(f"database connection '{display}' is not a URL: {EXPECTED}")
    given = match.group(1)
    scheme = SCHEMES.get(given.lower())
    if scheme is None:
        raise DatabaseFailure(
            f"unknown connection scheme '{given}' in database connection: "
            "expected sqlite, duckdb or postgresql"
        )
    if scheme == "postgresql":
        return Connection(scheme, url.strip(), display, secrets)
    return Connection(scheme, _file_target(url.strip(), scheme, resolve), display, secrets)


def file_path(url: str) -> str | None:
    """The file a sqlite or duckdb URL names, as written (``x.db``, ``/abs/x.db``); None for
    other URLs, ``:memory:`` and malformed ones (whose problem ``parse_connection`` reports)."""
    match = _SCHEME_RE.match(url.strip())
    if not match or SCHEMES.get(match.group(1).lower()) not in ("sqlite", "duckdb"):
        return None
    rest = url.strip()[match.end() :]
    if not rest.startswith("/") or rest[1:] in ("", MEMORY):
        return None
    return rest[1:]


def _file_target(url: str, scheme: str, resolve: Callable[[str], Path]) -> str:
    rest = url.split("://", 1)[1]
    if not rest.startswith("/"):
        host = rest.split("/", 1)[0]
        raise DatabaseFailure(
            f"{scheme} connection '{url}' has a host part ('{host}'): write {scheme}:///{rest}"
            f" for a path relative to the project root or {scheme}:////abs/path for an"
            " absolute one"
        )
    path = rest[1:]
    if not path:
        raise DatabaseFailure(
            f"{scheme} connection '{url}' has no path: expected {scheme}:///relative/path,"
            f" {scheme}:////absolute/path or {scheme}:///{MEMORY}"
        )
    if path == MEMORY:
        return MEMORY
    return str(resolve(path))
