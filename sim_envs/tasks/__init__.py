"""Navigation tasks as gymnasium environments: fly to a target, hike a chain of targets, follow a moving target."""
