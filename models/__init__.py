"""Model stage: estimators for mode, churn and default risk, the advisor bundle and the alert policy."""
