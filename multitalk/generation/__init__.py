"""multitalk/generation."""
