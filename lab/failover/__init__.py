"""Failover: faults and their restores, the timed run, RFC 6412 metrics, statistics, committed figures."""
