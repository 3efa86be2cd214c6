"""t2i package."""
