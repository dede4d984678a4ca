"""The functional core: pure functions of requests, jobs, policies and time. No AWS calls here."""
