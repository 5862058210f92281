"""The service as an MCP server: `search`, `ask` and `add_document` over the runtime the HTTP API
serves, on `/mcp` of the app (behind its keys) or over stdio (`python -m service.mcp`, a local
caller with every collection)."""
