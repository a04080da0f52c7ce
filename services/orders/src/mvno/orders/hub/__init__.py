"""Channel callbacks: TMF622 ``hub`` registrations and the signed webhooks delivered to them.

A bank channel registers a callback URL with an event query; every order state change that
matches is written as a webhook delivery in the same transaction as the change itself, and a
worker (several replicas may run it) POSTs it with Standard Webhooks signatures, retrying with
backoff and recording every attempt in the hub's delivery log.
"""
