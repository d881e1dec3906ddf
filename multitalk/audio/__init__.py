"""multitalk/audio."""
