"""Billing accounts on the billing platform and the operations that keep them in step."""
