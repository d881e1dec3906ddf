"""multitalk/model."""
