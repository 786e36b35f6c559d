"""data_processor step: add tax and a size band to each cleaned sale (reads INPUT_FILE)."""

import json
import os

with open(os.environ["INPUT_FILE"]) as handle:
    sales = json.load(handle)
for sale in sales:
    sale["amount_with_tax"] = round(sale["amount"] * 1.2, 2)
    sale["band"] = "large" if sale["amount"] >= 250 else "small"
print(json.dumps(sales))
