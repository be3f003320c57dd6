"""Routing by what each question needs: calibrated confidence, escalation, canary, shadow, spend limits."""
