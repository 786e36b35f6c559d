"""Check that a URL answers 2xx in time; prints a JSON summary (the task's result)."""

import json
import os
import sys
import time
import urllib.error
import urllib.request

url = os.environ.get("CHECK_URL", "")
timeout = float(os.environ.get("CHECK_TIMEOUT", "10"))
if not url:
    sys.exit("CHECK_URL is not set")
started = time.monotonic()
try:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        status = response.status
except urllib.error.HTTPError as exc:
    status = exc.code
except (urllib.error.URLError, OSError) as exc:
    print(json.dumps({"url": url, "ok": False, "error": str(exc)}))
    sys.exit(1)
elapsed_ms = round((time.monotonic() - started) * 1000, 1)
print(json.dumps({"url": url, "ok": 200 <= status < 300, "status": status, "ms": elapsed_ms}))
sys.exit(0 if 200 <= status < 300 else 1)
