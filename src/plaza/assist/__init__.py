"""Language models in the agents' loop, never past the guard (issue 19)."""
