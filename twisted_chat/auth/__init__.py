"""Who may come in: twisted.cred credentials, checkers and the realm."""
