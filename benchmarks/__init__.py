"""rt-enhance benchmarks package."""
