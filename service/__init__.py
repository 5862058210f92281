"""The HTTP API, the runtime that answers it, and the generator's decode loop."""

# Imported first for its side effect: offline mode, set before any model library loads.
import retrieval  # noqa: F401
