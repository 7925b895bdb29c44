"""The terminal client, C{chat-client}."""
