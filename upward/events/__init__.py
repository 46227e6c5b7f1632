"""Kafka-side tools of the ``upward`` CLI: tail events, census of topics, dead letters.

Everything here reads the catalogue topics with manual partition assignment and no
consumer group, so it never disturbs the services' committed offsets. The only writer is
``upward dlq replay`` (see :mod:`upward.events.dead_letters`).
"""
