"""Test helpers shared by several test modules (fake services, builders)."""
