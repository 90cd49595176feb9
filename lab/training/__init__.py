"""Exercises for trainers: a lab started broken or weakened, and a check of the running lab (issue 20)."""
