"""Triggers: what starts runs without a person at the keyboard.

``launcher.RunQueue`` is the one way every trigger source (cron schedules, webhooks, file
changes) starts runs: bounded concurrency, a bounded wait list, and a recorded, cancellable
shutdown. The sources only decide *when* and *with what environment*.
"""
