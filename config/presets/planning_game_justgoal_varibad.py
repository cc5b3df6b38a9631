"""Memory & Planning Game 3x3 where the agent only observes whether it is on the goal."""
EXTENDS = "planning_game_varibad"
OVERRIDES = {"env_name": "PlanningGame-justgoal"}
