"""What GPU readings mean: the verdict of each condition, counter and tool failure, and
the classifier that remembers baselines so that each fires once."""
