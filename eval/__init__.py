"""rapid-eval and what a user sees: the sweep runner, summaries, the table, W&B logging."""
