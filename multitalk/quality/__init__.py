"""Quality gates: named checks with scores and thresholds, run on each rendered chunk's frames and audio."""
