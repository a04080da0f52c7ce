# The platform's AWS resources for one environment (one state per environment: dev, prod).
# bus.tf.json is generated from the bus topology (mvno.common.bus.topology) and holds the topics,
# queues, DLQs, subscriptions, the services and their IAM policies; the files beside it are written
# by hand and iterate over what it declares (local.services, local.bus_queues).
#
# Outside this root module, owned by the bank's platform team: the VPC and its subnets, the EKS
# cluster and its OIDC provider, and the state backend (configured per environment with
# `terraform init -backend-config=...`).

terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }

  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      "mvno:environment" = var.environment
      "mvno:managed-by"  = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
