"""rt-enhance realtime package."""
