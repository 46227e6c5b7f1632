"""The notifications domain: who gets what, when, on which channel. Pure: no I/O, no asyncio."""
