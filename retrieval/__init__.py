"""Documents, chunking, embeddings, the index and web search.

Offline mode is set here, once, for the whole project (`service` and `query_unit` import this
package first): models come from packages that ship their weights, so nothing is fetched from a
model hub at run time. A deployment that does load hub models sets HF_HUB_OFFLINE=0 itself.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
