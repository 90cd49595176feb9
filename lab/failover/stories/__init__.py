"""Failover stories as a registry: the first that applies to a fault on a target tells it.

A new story is one module here plus its place in STORIES (more specific first).
"""
from __future__ import annotations

from lab.model.schema import LabPlan
from lab.failover.faults import Fault, TargetSpec
from lab.failover.stories.base import Story
from lab.failover.stories.handover import HandoverStory, handover_of
from lab.failover.stories.outage import OutageStory
from lab.failover.stories.path_switch import PathSwitchStory
from lab.failover.stories.withdrawal import WithdrawalStory, withdrawal_of

STORIES: list[type[Story]] = [PathSwitchStory, OutageStory, HandoverStory, WithdrawalStory]


def story_for(plan: LabPlan, fault: Fault, spec: TargetSpec) -> Story:
    return next(story(plan, spec, fault) for story in STORIES if story.applies(plan, fault, spec))


__all__ = ["STORIES", "Story", "handover_of", "story_for", "withdrawal_of"]
