"""Process output is masked chunk by chunk, before it is cut into lines."""

from __future__ import annotations

import asyncio
import sys

from jupyter_workflows.execution.masking import Masker
from jupyter_workflows.tasks.process import MAX_LINE_BYTES, run_process

SECRET = "pipe-secret-9Xq"


def run(code: str, masker: Masker | None) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    outcome = asyncio.run(
        run_process(
            [sys.executable, "-c", code],
            cwd=None,
            env=None,
            on_line=lambda stream, line: lines.append((stream, line)),
            masker=masker,
        )
    )
    assert outcome.exit_code == 0
    return lines


def test_a_secret_across_a_long_lines_cut_is_masked():
    # The secret straddles the point where a line too long to hold is cut in two.
    code = (
        "import sys\n"
        f"sys.stdout.write('x' * {MAX_LINE_BYTES - 4} + {SECRET!r} + ' tail\\n')\n"
        f"sys.stderr.write('err ' + {SECRET!r} + '\\n')\n"
    )
    plain = run(code, None)
    assert SECRET[:4] in plain[0][1] or SECRET[:4] in plain[1][1]  # cut inside the secret
    lines = run(code, Masker([SECRET]))
    text = "".join(line for stream, line in lines if stream == "stdout")
    assert text == "x" * (MAX_LINE_BYTES - 4) + "*** tail"
    assert ("stderr", "err ***") in lines
    assert not any(SECRET[:4] in line or SECRET[-4:] in line for _, line in lines)


def test_a_secret_written_in_pieces_and_utf8_split_mid_character():
    code = (
        "import sys, time\n"
        f"s = {SECRET!r}\n"
        "out = sys.stdout.buffer\n"
        "out.write(b'caf\\xc3'); out.flush(); time.sleep(0.1)\n"
        "out.write(b'\\xa9 ' + s[:5].encode()); out.flush(); time.sleep(0.1)\n"
        "out.write(s[5:].encode() + b'\\nno newline at the end ' + s[:3].encode()); out.flush()\n"
    )
    lines = run(code, Masker([SECRET]))
    assert lines == [("stdout", "café ***"), ("stdout", "no newline at the end " + SECRET[:3])]
