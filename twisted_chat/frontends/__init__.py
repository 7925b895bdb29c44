"""The front ends: bytes on a wire to typed session calls, events to bytes."""
