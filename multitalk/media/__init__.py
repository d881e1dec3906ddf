"""multitalk/media."""
