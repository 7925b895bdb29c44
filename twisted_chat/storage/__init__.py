"""Where room history is kept: in memory or in the SQLite file."""
