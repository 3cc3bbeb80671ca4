"""rt-enhance model package."""
