"""Several devices on one scene: process groups, guidance-parallel and sequence-parallel sampling, scene workers."""
