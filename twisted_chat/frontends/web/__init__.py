"""The browser front end: the page and its JSON WebSocket."""
