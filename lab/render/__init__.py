"""Rendering: a LabPlan in, config files (strongSwan, FRR, keepalived, nftables, Compose) as text out (pure)."""
