"""Running a lab: the ports to the outside world, deploy stages, up/down/status, observing it on one clock."""
