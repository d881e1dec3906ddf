"""multitalk."""
