"""Seed tables as CSV, editable data that SQL stages load."""
