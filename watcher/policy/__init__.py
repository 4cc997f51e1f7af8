"""The policy: findings in, at most one decision out. All counting and budgets live here."""
