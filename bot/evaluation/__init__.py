"""Evaluation: question sets, metrics and reports (python -m bot eval), refusal calibration."""
