"""``upward token``: a development bearer token for calling the services by hand."""
