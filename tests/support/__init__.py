"""What several test modules share: partner file headers, free ports, the attacker on suppressed
tables, and the conftest's guard against skips in CI. One place, so copies cannot drift."""
