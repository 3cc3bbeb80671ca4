"""rt-enhance training package."""
