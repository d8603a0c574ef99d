"""The service's routes, one router per concern: scoring, memory (the state store), admin."""
