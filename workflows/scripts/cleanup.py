"""Delete files older than N days under the given directories; prints what it removed as JSON."""

import json
import os
import sys
import time
from pathlib import Path

days = float(os.environ.get("KEEP_DAYS", "7"))
dry_run = os.environ.get("DRY_RUN", "false").lower() == "true"
cutoff = time.time() - days * 86400
removed = []
for folder in sys.argv[1:]:
    root = Path(folder)
    if not root.is_dir():
        continue
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.stat().st_mtime < cutoff:
            removed.append(str(path))
            if not dry_run:
                path.unlink()
print(json.dumps({"removed": len(removed), "files": removed[:50], "dry_run": dry_run}))
