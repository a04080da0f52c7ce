# The on-call dashboard: the figures the alarms watch (saga failure rate, provisioning p99,
# outbox age, canary failures, DLQ depth, 5xx), beside what explains them (open orders by state,
# step failures and retries per partner, circuit states, queue age and lag, usage ingestion,
# reconciliation drift). Its widgets are in dashboard.json.tftpl, checked against the metric
# catalogue by tests/deploy.

resource "aws_cloudwatch_dashboard" "platform" {
  dashboard_name = "mvno-${var.environment}-platform"
  dashboard_body = templatefile("${path.module}/dashboard.json.tftpl", { region = var.region })
}

output "dashboard_name" {
  description = "CloudWatch dashboard of the platform's health."
  value       = aws_cloudwatch_dashboard.platform.dashboard_name
}
