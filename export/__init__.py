"""rt-enhance export package."""
