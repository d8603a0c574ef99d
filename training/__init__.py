"""Training stage: fit, calibrate, evaluate, log, register and promote."""
