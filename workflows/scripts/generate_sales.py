"""Write raw sales CSV files, one per region, with a few dirty rows for the cleaner to drop."""

import csv
import os
import random
from pathlib import Path

out = Path(os.environ.get("RAW_DIR", "build/pipeline/raw"))
rows = int(os.environ.get("ROWS") or "200")
out.mkdir(parents=True, exist_ok=True)
rng = random.Random(42)  # the same data every run, so results can be checked
written = 0
for region in ("north", "south", "west"):
    with (out / f"sales-{region}.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "amount"])
        for i in range(rows):
            dirty = i % 25 == 0
            writer.writerow([i, "n/a" if dirty else f"{rng.uniform(5, 500):.2f}"])
            written += 1
print(written)
