"""One module per pipeline stage: the functions the numbered scripts call."""
