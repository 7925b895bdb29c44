"""Tests for twisted-chat."""
