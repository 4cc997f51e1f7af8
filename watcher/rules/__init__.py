"""Log rules: the rule model, the built-in packs and the multi-pattern matcher."""
