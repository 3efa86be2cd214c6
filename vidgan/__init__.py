"""vidgan package."""
