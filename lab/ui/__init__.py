"""Interfaces for people and tools: the `lab` CLI, status and failover views."""
