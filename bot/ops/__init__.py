"""What the operator touches: the health and metrics endpoint, the counters, logging, `check`
and the receiver of fal's webhooks.

It sits beside `pika`, `fal`, `store` and `media`, below the jobs: the jobs count into its
metrics and tag its log lines, and it never imports the jobs, the cogs or the app (the health
endpoint reads the bot through the small `health.Watched` interface).
"""
