"""``${...}`` in a URL: each value is encoded for the part of the URL it lands in.

A value changes what a URL says, never its shape: it cannot add a path segment, a query
parameter, a fragment, a host or credentials. Where a reference sits is read from the URL
text before it (and, for credentials, from an ``@`` after it)::

    ${env.API_URL}/health          the very start: a whole http(s) URL, inserted as it is
    ${env.SCHEME}://host/          the scheme: http or https
    http://${env.U}:${env.P}@h/    user and password: percent-encoded
    http://${env.HOST}/            the host: a name, an IPv4 or [IPv6] address, with :port or not
    http://host:${env.PORT}/       the port: 1 to 65535
    http://host/items/${id}/view   the path: percent-encoded ('/', '?', '#', '%', ';', '\\', ...),
                                   and a segment that would be '.' or '..' is refused
    http://host/s?q=${q}           the query: percent-encoded ('&', '=', '+', '#', '%', ...)
    http://host/p#${f}             the fragment: percent-encoded
    ${env.X|raw}                   anywhere: inserted as it is, unchecked (the author vouches)

A value that cannot be where it is (a host with a '/', a port that is not a number, a base URL
that is not http(s)) raises ``UrlTemplateError`` naming the reference, the part and what was
expected, and no request is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from ..errors import WorkflowError
from .templates import Reference, Scope, split_template, to_text

__all__ = ["UrlTemplateError", "render_url"]

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
# A host name (labels of letters, digits, '-' and '_', not starting or ending with '-'),
# an IPv4 address, or an IPv6 address in brackets; then an optional port.
_LABEL = r"\w(?:[\w-]*\w)?"
_HOST_RE = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\])(?::(\d{{1,5}}))?")
_BAD_BASE_RE = re.compile(r"[\s\x00-\x1f\x7f]")


class UrlTemplateError(WorkflowError):
    """A value that cannot be put where its reference is in a URL; the message says why."""


@dataclass
class _Inserted:
    """A value placed in the path, to check the segment it ends up in."""

    start: int
    end: int
    reference: Reference


def render_url(template: str, scope: Scope) -> str:
    """``template`` with every reference's value encoded for its part of the URL."""
    parts = split_template(template)
    url = ""
    in_path: list[_Inserted] = []
    for index, part in enumerate(parts):
        if isinstance(part, str):
            url += part
            continue
        value = to_text(scope.resolve(part))
        following = "".join(p for p in parts[index + 1 :] if isinstance(p, str))
        if "raw" in part.filters:
            text = value
        else:
            where = _part(url, following)
            text = _encode(where, value, part, following, more=index + 1 < len(parts))
            if where == "path":
                in_path.append(_Inserted(len(url), len(url) + len(text), part))
        url += text
    for inserted in in_path:
        _check_segment(url, inserted)
    return url


def _part(before: str, following: str) -> str:
    """Which part of the URL a value placed after ``before`` lands in."""
    if not before:
        return "scheme" if following.startswith("://") else "base"
    scheme = _SCHEME_RE.match(before)
    if scheme is None:
        return "before-scheme"
    rest = before[scheme.end() :]
    if "#" in rest:
        return "fragment"
    if "?" in rest:
        return "query"
    if "/" in rest:
        return "path"
    # Still in the authority: [user[:password]@]host[:port]
    if "@" in rest:
        rest = rest.rsplit("@", 1)[1]
    else:
        authority_after = re.split(r"[/?#]", following, maxsplit=1)[0]
        if "@" in authority_after:
            return "userinfo"
    if rest.startswith("[") and "]" not in rest:
        return "host"  # inside an IPv6 literal
    return "port" if ":" in rest.rsplit("]", 1)[-1] else "host"


def _encode(where: str, value: str, ref: Reference, following: str, *, more: bool) -> str:
    if where in ("path", "query", "fragment", "userinfo"):
        # Nothing but letters, digits and '-._~' stays as it is: every delimiter a value could
        # hold ('/', '?', '#', '&', '=', '+', ';', ':', '@', '%', '\\') is data once encoded.
        try:
            return quote(value, safe="", encoding="utf-8", errors="surrogateescape")
        except UnicodeEncodeError:
            raise _refuse(ref, value, where, "text (it holds an unpaired surrogate)") from None
    if where == "host":
        match = _HOST_RE.fullmatch(value)
        with_port = following.startswith(":")
        if match is None or (with_port and match.group(1)) or not _port_ok(match.group(1)):
            expected = "a host name or IP address" + ("" if with_port else " (with :port or not)")
            raise _refuse(ref, value, "host", expected)
        return value
    if where == "port":
        if not _port_ok(value) or not value:
            raise _refuse(ref, value, "port", "a port number from 1 to 65535")
        return value
    if where == "scheme":
        if value.lower() not in ("http", "https"):
            raise _refuse(ref, value, "scheme", "http or https")
        return value
    if where == "base":
        return _base(value, ref, following, more=more)
    raise UrlTemplateError(
        f"url: {ref.text} comes before the URL's scheme: start the url with 'http://' or "
        f"'https://', or with a reference holding a whole URL (use {_raw(ref)} to insert it as "
        "it is)"
    )


def _port_ok(port: str | None) -> bool:
    if port is None:
        return True
    return port.isascii() and port.isdigit() and 0 < int(port) <= 65535


def _base(value: str, ref: Reference, following: str, *, more: bool) -> str:
    """A reference at the start of the url holds a whole http(s) URL, used as it is."""
    expected = "a whole http:// or https:// URL with a host (such as http://api:8080/v1)"
    if _BAD_BASE_RE.search(value):
        raise _refuse(ref, value, "start", expected)
    try:
        split = urlsplit(value)
        split.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        raise _refuse(ref, value, "start", expected) from None
    if split.scheme.lower() not in ("http", "https") or not split.hostname:
        raise _refuse(ref, value, "start", expected)
    if more and ("?" in value or "#" in value):
        raise UrlTemplateError(
            f"url: {ref.text} starts the URL and has a query or fragment ({value!r}), so the "
            "rest of the url would land in it; put the query after the path in the workflow, "
            "or give only the base URL (such as http://api:8080/v1) "
        )
    if value.endswith("/") and following.startswith("/"):
        value = value[:-1]  # "http://api/" + "/health": one slash, not two
    return value


def _check_segment(url: str, inserted: _Inserted) -> None:
    """Refuse a path segment a value made '.' or '..' (a server would leave the path by it)."""
    start = url.rfind("/", 0, inserted.start) + 1
    end = len(url)
    for delimiter in "/?#":
        found = url.find(delimiter, inserted.end)
        if found >= 0:
            end = min(end, found)
    segment = url[start:end]
    if unquote(segment) in (".", ".."):
        ref = inserted.reference
        raise UrlTemplateError(
            f"url: {ref.text} makes the path segment {segment!r}, which would move the request "
            f"to another path; a path value cannot be '.' or '..' (use {_raw(ref)} to insert "
            "it as it is)"
        )


def _refuse(ref: Reference, value: str, part: str, expected: str) -> UrlTemplateError:
    where = "at the start of the URL" if part == "start" else f"in the URL's {part}"
    return UrlTemplateError(
        f"url: {ref.text} is {where} and must be {expected}, not {value!r}"
        f" (use {_raw(ref)} to insert it as it is)"
    )


def _raw(ref: Reference) -> str:
    return ref.text[:-1].rstrip() + "|raw}" if "raw" not in ref.filters else ref.text
