"""Pure rules of the sessions service: no I/O, no asyncio."""
