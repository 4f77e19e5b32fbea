"""Expression signals and the expression model (issue 4): eyes open, not mid-speech, no blur."""
