"""Local development stack: Apache Kafka (KRaft, official jars) + embedded PostgreSQL.

Public API::

    from upward.stack import LocalStack, StackSettings

    info = LocalStack(StackSettings()).up()
    info.bootstrap_servers, info.database_urls["matching"]
"""

from upward.stack.errors import StackError
from upward.stack.kafka import KAFKA_VERSION
from upward.stack.process import free_ports
from upward.stack.settings import (
    SERVICES,
    ExternalAddresses,
    StackSettings,
    database_url,
    server_url,
)
from upward.stack.stack import ComponentStatus, LocalStack, StackInfo

__all__ = [
    "KAFKA_VERSION",
    "SERVICES",
    "ComponentStatus",
    "ExternalAddresses",
    "LocalStack",
    "StackError",
    "StackInfo",
    "StackSettings",
    "database_url",
    "free_ports",
    "server_url",
]
