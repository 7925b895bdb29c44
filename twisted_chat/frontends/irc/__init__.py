"""The IRC client protocol front end (SPEC section 6)."""
