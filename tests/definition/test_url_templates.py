"""``render_url``: values encoded for the URL part they land in; the ``raw`` filter; validation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jupyter_workflows.definition.loader import validate_file
from jupyter_workflows.definition.templates import Scope, find_references, render
from jupyter_workflows.definition.url_templates import UrlTemplateError, render_url
from jupyter_workflows.errors import ExpressionError


def url(template: str, **env: str) -> str:
    return render_url(template, Scope(env=env))


@pytest.mark.parametrize(
    ("template", "value", "expected"),
    [
        ("http://h/items/${env.V}/view", "../../admin/delete?id=1#", "http://h/items/..%2F..%2Fadmin%2Fdelete%3Fid%3D1%23/view"),
        ("http://h/items/${env.V}", "a;b\\c%2e", "http://h/items/a%3Bb%5Cc%252e"),
        ("http://h/items/${env.V}", "Zoë x", "http://h/items/Zo%C3%AB%20x"),
        ("http://h/items/${env.V}.json", "..", "http://h/items/...json"),
        ("http://h/s?q=${env.V}&p=1", "a&admin=true#x+y", "http://h/s?q=a%26admin%3Dtrue%23x%2By&p=1"),
        ("http://h/p#${env.V}", "a b/c?d", "http://h/p#a%20b%2Fc%3Fd"),
        ("http://${env.V}:pw@h/", "a@b:c/", "http://a%40b%3Ac%2F:pw@h/"),
        ("http://${env.V}/x", "api.internal:8080", "http://api.internal:8080/x"),
        ("http://${env.V}/x", "[::1]:8080", "http://[::1]:8080/x"),
        ("http://${env.V}:80/x", "my_service", "http://my_service:80/x"),
        ("http://h:${env.V}/x", "8080", "http://h:8080/x"),
        ("${env.V}://h/x", "HTTPS", "HTTPS://h/x"),
        ("${env.V}/health", "http://api:8080/v1/", "http://api:8080/v1/health"),
        ("${env.V}", "https://api/x?a=1#f", "https://api/x?a=1#f"),
        ("http://h/${env.V|raw}", "a/b?c=1#d", "http://h/a/b?c=1#d"),
        ("${ env.V | raw }/x", "anything at all", "anything at all/x"),
    ],
)  # fmt: skip
def test_values_are_encoded_for_their_part(template: str, value: str, expected: str) -> None:
    assert url(template, V=value) == expected


@pytest.mark.parametrize(
    ("template", "value", "fragment"),
    [
        ("http://h/items/${env.V}/view", "..", "path segment '..'"),
        ("http://h/items/${env.V}", ".", "path segment '.'"),
        ("http://h/items/.${env.V}/x", ".", "path segment '..'"),
        ("http://h/%2e${env.V}/x", ".", "path segment '%2e.'"),
        ("http://${env.V}/x", "evil.com/admin?", "in the URL's host and must be a host name"),
        ("http://${env.V}/x", "a@b", "in the URL's host"),
        ("http://${env.V}/x", "h:99999", "in the URL's host"),
        ("http://${env.V}:80/x", "h:81", "must be a host name or IP address, not 'h:81'"),
        ("http://h:${env.V}/x", "80/admin", "in the URL's port and must be a port number"),
        ("http://h:${env.V}/x", "0", "in the URL's port"),
        ("${env.V}://h/x", "file", "in the URL's scheme and must be http or https"),
        ("${env.V}/x", "file:///etc/passwd", "at the start of the URL and must be a whole http"),
        ("${env.V}/x", "http://h/?q=", "has a query or fragment"),
        ("${env.V}/x", "http://h:port/", "at the start of the URL"),
        ("${env.V}/x", "http://h/ x", "at the start of the URL"),
        ("h/${env.V}", "x", "comes before the URL's scheme"),
    ],
)
def test_values_that_cannot_be_where_they_are_are_refused(
    template: str, value: str, fragment: str
) -> None:
    with pytest.raises(UrlTemplateError) as caught:
        url(template, V=value)
    message = str(caught.value)
    assert message.startswith("url: ${env.V} ") and fragment in message, message
    if "comes before" not in message and "has a query" not in message:
        assert "${env.V|raw}" in message  # the way out is named


def test_raw_filter_parses_and_unknown_filters_do_not() -> None:
    (ref,) = find_references("x ${ env.URL | raw } y")
    assert (ref.scope, ref.path, ref.filters) == ("env", ("URL",), ("raw",))
    assert render("${env.A|raw}", Scope(env={"A": "v"})) == "v"  # elsewhere: plain text
    with pytest.raises(ExpressionError, match="unknown filter 'upper' after '|'"):
        find_references("${env.A|upper}")
    with pytest.raises(ExpressionError, match="unknown filter nothing"):
        find_references("${env.A|}")
    with pytest.raises(ExpressionError, match="missing reference before '|'"):
        find_references("${|raw}")


def test_validate_accepts_raw_in_an_http_url_only(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: demo
            tasks:
              - id: call
                type: http
                url: "${env.BASE_URL|raw}/health"
              - id: nested
                type: loop
                items: [1]
                then:
                  type: http
                  url: "${env.BASE_URL|raw}"
              - id: sh
                type: shell
                command: "echo ${env.X|raw}"
              - id: bad
                type: http
                url: "http://h/${env.X|upper}"
                headers: {A: "${env.X|raw}"}
            """
        ).lstrip()
    )
    report = validate_file(path)
    assert [(p.line, p.task_id, p.field) for p in report.errors] == [
        (14, "sh", "command"),
        (17, "bad", "url"),
        (18, "bad", "headers.A"),
    ]
    assert "only for an http task's url" in report.errors[0].message
    assert "unknown filter 'upper'" in report.errors[1].message
