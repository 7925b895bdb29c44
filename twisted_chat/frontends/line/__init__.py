"""The line (telnet) front end."""
