"""The runtime kit every Upward service is built on.

It holds the plumbing that is the same in all four services, written once:
settings, the PostgreSQL pool and migrations, the transactional outbox and its
relay, the inbox (dedup) table, the Kafka consumer loop with dead letters and
retries, metrics, health probes, structured logs and trace context.
Services keep their own domain, handlers, adapters and entrypoints.
"""
