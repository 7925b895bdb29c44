"""The chat itself: members, rooms, what they say, as values and plain calls; no I/O."""
