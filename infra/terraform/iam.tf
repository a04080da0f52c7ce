# One IAM role per service, assumable only by that service's Kubernetes service account through
# the cluster's OIDC provider (IRSA), with the least-privilege policy generated from the bus
# topology (local.service_iam_policies in bus.tf.json): publish to its own topics, consume its own
# queues, use its own personal-data key. Its API pods and queue workers share the role.

data "aws_iam_policy_document" "assume_from_service_account" {
  for_each = local.services

  statement {
    sid     = "ServiceAccountOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_url}:sub"
      values   = ["system:serviceaccount:${var.kubernetes_namespace}:${each.key}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "service" {
  for_each = local.services

  # The name k8s/ annotates each service account with (eks.amazonaws.com/role-arn).
  name                 = "mvno-${each.key}"
  description          = "mvno ${var.environment}: the ${each.key} service (IRSA)"
  assume_role_policy   = data.aws_iam_policy_document.assume_from_service_account[each.key].json
  max_session_duration = 3600

  tags = { "mvno:service" = each.key }
}

resource "aws_iam_role_policy" "service" {
  for_each = local.services

  name   = "mvno-${each.key}-least-privilege"
  role   = aws_iam_role.service[each.key].id
  policy = jsonencode(local.service_iam_policies[each.key])
}

# KEDA's operator reads the queues' depth to scale the workers, with a role of its own that may do
# nothing else (local.autoscaler_iam_policy); it never assumes a service's role.
data "aws_iam_policy_document" "assume_from_keda" {
  statement {
    sid     = "KedaOperatorOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_url}:sub"
      values   = ["system:serviceaccount:${var.keda_namespace}:${var.keda_service_account}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.eks_oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "autoscaler" {
  name                 = "mvno-keda-operator"
  description          = "mvno ${var.environment}: KEDA reading the bus queues' depth (IRSA)"
  assume_role_policy   = data.aws_iam_policy_document.assume_from_keda.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "autoscaler" {
  name   = "mvno-keda-read-queue-depth"
  role   = aws_iam_role.autoscaler.id
  policy = jsonencode(local.autoscaler_iam_policy)
}
