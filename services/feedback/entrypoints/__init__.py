"""The feedback service's entry points: HTTP routes, the faust stream table, the process."""
