"""The dispatcher: identify, plan, route by stage and type, collect with deadlines, children, verdicts."""
