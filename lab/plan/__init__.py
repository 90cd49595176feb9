"""Planning: scenario and profile files -> validated models -> a resolved LabPlan; where networks live; redundancy strategies (pure)."""
