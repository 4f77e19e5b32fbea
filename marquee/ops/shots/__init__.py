"""Shot-boundary detection: detectors, the default hybrid, and evaluation."""
