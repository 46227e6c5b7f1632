"""The four services as local processes (``upward services``) and the demo's SMTP sink."""

from upward.services.manager import (
    DEFAULT_PORTS,
    Infrastructure,
    ServiceOptions,
    ServicesError,
    ServiceSupervisor,
    service_environment,
)

__all__ = [
    "DEFAULT_PORTS",
    "Infrastructure",
    "ServiceOptions",
    "ServiceSupervisor",
    "ServicesError",
    "service_environment",
]
