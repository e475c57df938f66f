"""The reliability suite: load, faults, restarts, hostile input and access, with figures."""
