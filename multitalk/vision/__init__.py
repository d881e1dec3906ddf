"""Pictures of people: face detection and identity, with models shipped inside PyPI packages."""
