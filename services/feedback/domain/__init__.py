"""The feedback service's rules: requests, milestones, pair health, outcomes and privacy.

Pure code: no I/O, no asyncio. Handlers load state through the repository, call these
functions, save the result and emit the events they return.
"""
