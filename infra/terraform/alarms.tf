# CloudWatch alarms, all notifying one encrypted SNS topic that the on-call tooling subscribes to:
# a message in any dead-letter queue, a queue whose oldest message waits too long (consumers down
# or too few), and 5xx answers from the load balancer in front of the public services.

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
  alarm_description   = "A message of ${each.key} landed in ${each.value.dlq_name} after 5 failed receives: inspect and redrive with `python -m mvno.common.bus.dlq`."
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
  alarm_description   = "The oldest message in ${each.value.name} has waited over 5 minutes: ${each.key}'s workers are down or too few."
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
  alarm_description   = "More than 1% of ${each.key}'s answers through the load balancer were 5xx over 5 minutes."
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
