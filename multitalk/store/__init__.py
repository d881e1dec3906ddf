"""multitalk/store."""
