# CloudWatch alarms, all notifying one encrypted SNS topic that the on-call tooling subscribes to:
# a message in any dead-letter queue, a queue whose oldest message waits too long (consumers down
# or too few), 5xx answers from the load balancer in front of the public services, and, from the
# platform's own metrics (namespace MVNO, sent by the ADOT collector as EMF; names and dimensions
# in mvno.common.metric_catalog): the saga's failure rate, its end-to-end p99, an outbox whose
# oldest row waits, and failing canary probes. Each alarm's description names its runbook,
# docs/runbooks/<the alarm name's last part>.md (tests/deploy checks both ways).

resource "aws_sns_topic" "alarms" {
  name              = "mvno-${var.environment}-alarms"
  kms_master_key_id = aws_kms_key.bus.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each = toset(var.alarm_email_endpoints)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  for_each = local.bus_queues

  alarm_name          = "mvno-${var.environment}-${each.key}-dead-letters"
  alarm_description   = "A message of ${each.key} landed in ${each.value.dlq_name} after 5 failed receives: inspect and redrive with `python -m mvno.common.bus.dlq`. Runbook: docs/runbooks/dead-letters.md"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value.dlq_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "queue_age" {
  for_each = local.bus_queues

  alarm_name          = "mvno-${var.environment}-${each.key}-queue-age"
  alarm_description   = "The oldest message in ${each.value.name} has waited over 5 minutes: ${each.key}'s workers are down or too few. Runbook: docs/runbooks/queue-age.md"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = each.value.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 300
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "http_5xx_rate" {
  for_each = var.alb_arn_suffixes

  alarm_name          = "mvno-${var.environment}-${each.key}-5xx-rate"
  alarm_description   = "More than 1% of ${each.key}'s answers through the load balancer were 5xx over 5 minutes. Runbook: docs/runbooks/5xx-rate.md"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 1
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "rate"
    expression  = "100 * errors / MAX([errors, requests])"
    label       = "5xx rate (%)"
    return_data = true
  }

  metric_query {
    id = "errors"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = each.value }
      stat        = "Sum"
      period      = 60
    }
  }

  metric_query {
    id = "requests"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = each.value }
      stat        = "Sum"
      period      = 60
    }
  }
}

# --- From the platform's own metrics (EMF, namespace MVNO) ---------------------------------------

locals {
  # The services whose outbox a relay publishes (mvno.common.bus.access: those that publish).
  outbox_services = toset(["catalog", "orders", "billing-sync"])
}

resource "aws_cloudwatch_metric_alarm" "saga_failure_rate" {
  alarm_name          = "mvno-${var.environment}-saga-failure-rate"
  alarm_description   = "More than ${var.saga_failure_rate_percent}% of the orders that finished in 5 minutes failed (at least 5 finished), twice in 15 minutes: a partner refuses or is down and compensations run. Runbook: docs/runbooks/saga-failure-rate.md"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.saga_failure_rate_percent
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "rate"
    expression  = "IF(failed + completed >= 5, 100 * failed / (failed + completed), 0)"
    label       = "Orders failed (%)"
    return_data = true
  }

  metric_query {
    id = "failed"

    metric {
      namespace   = local.metric_namespace
      metric_name = "mvno.orders.saga.finished"
      dimensions  = { state = "failed" }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "completed"

    metric {
      namespace   = local.metric_namespace
      metric_name = "mvno.orders.saga.finished"
      dimensions  = { state = "completed" }
      stat        = "Sum"
      period      = 300
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "provisioning_time_p99" {
  alarm_name          = "mvno-${var.environment}-provisioning-time-p99"
  alarm_description   = "The slowest 1% of completed orders took over ${var.provisioning_p99_seconds} s from capture to completion, for 15 minutes: a step waits on a slow partner or retries. Runbook: docs/runbooks/provisioning-time-p99.md"
  namespace           = local.metric_namespace
  metric_name         = "mvno.orders.provisioning.duration"
  dimensions          = { state = "completed" }
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.provisioning_p99_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "outbox_age" {
  for_each = local.outbox_services

  alarm_name          = "mvno-${var.environment}-${each.key}-outbox-age"
  alarm_description   = "${each.key}'s oldest unpublished event has waited over 2 minutes for 5 minutes, or nothing reports it: its relay is down or SNS refuses. Runbook: docs/runbooks/outbox-age.md"
  namespace           = local.metric_namespace
  metric_name         = "mvno.bus.outbox.oldest_age"
  dimensions          = { service = each.key }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 120
  comparison_operator = "GreaterThanThreshold"
  # The relay reports the gauge every 30 s; silence means no relay runs.
  treat_missing_data = "breaching"
  alarm_actions      = [aws_sns_topic.alarms.arn]
  ok_actions         = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "canary_failures" {
  alarm_name          = "mvno-${var.environment}-canary-failures"
  alarm_description   = "Canary probes failed in 2 of the last 3 minutes: a partner or the customer journey is down or slower than the canary's threshold. Runbook: docs/runbooks/canary-failures.md"
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "failures"
    expression  = "SELECT SUM(\"mvno.canary.probes\") FROM SCHEMA(\"MVNO\", outcome, probe) WHERE outcome = 'failure'"
    label       = "Failed canary probes"
    period      = 60
    return_data = true
  }
}
