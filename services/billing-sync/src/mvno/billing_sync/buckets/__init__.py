"""Allowance buckets and the airtime balance."""
