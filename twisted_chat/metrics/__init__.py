"""What the server counts (L{observer}) and how Prometheus reads it (L{prometheus})."""
