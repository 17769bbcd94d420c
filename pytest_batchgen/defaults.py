"""Defaults the option table and the stores share, each defined once.

Imported by settings.py, so by the plugin in every pytest run: it imports nothing.
"""

# The platform's Appwrite database, and where the platform keeps its Appwrite settings.
DEFAULT_DATABASE = "default"
DEFAULT_MCP_CONFIG = ".mcp.json"
# Author-critic rounds a lesson may take (--batch-max-retries).
DEFAULT_MAX_RETRIES = 10
