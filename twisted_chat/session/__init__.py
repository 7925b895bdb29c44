"""One user's session, whatever the front end: login, then commands to the domain."""
