"""The pieces of ``vision-events demo``: synthetic clips, the runner, progress and the summary."""
