"""When knowledge is missing, what to ask, and what to feed back."""

# Imported first for its side effect: offline mode, set before any model library loads.
import retrieval  # noqa: F401
