"""The event bus: CloudEvents over SNS/SQS with a transactional outbox and an idempotent inbox."""
