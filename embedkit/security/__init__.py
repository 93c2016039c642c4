"""Who is asking (principals) and what they may see (row and column rules)."""
