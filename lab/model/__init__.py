"""The model: typed scenarios, profiles and plans, node kinds, Azure's rules as data, errors and names (pure)."""
