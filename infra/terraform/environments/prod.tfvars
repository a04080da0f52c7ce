# prod: `terraform apply -var-file=environments/prod.tfvars` with the prod account's credentials.
# PLACEHOLDER ids: the platform team's VPC, subnets, EKS cluster and load balancers of prod.
environment = "prod"
region      = "eu-west-1"

eks_oidc_provider_arn      = "arn:aws:iam::222222222222:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/PROD0000000000000000000000000000"
eks_oidc_provider_url      = "oidc.eks.eu-west-1.amazonaws.com/id/PROD0000000000000000000000000000"
eks_node_security_group_id = "sg-0e000000000000001"
vpc_id                     = "vpc-0e0000000000000e1"
database_subnet_ids        = ["subnet-0e00000000000001", "subnet-0e00000000000002", "subnet-0e00000000000003"]

database_instance_class        = "db.r6g.large"
database_allocated_storage_gb  = 100
database_backup_retention_days = 35

# The ALBs the AWS Load Balancer Controller made for the public services (5xx alarms).
alb_arn_suffixes = {
  portal-api = "app/k8s-mvno-portalap-0000000000/0000000000000000"
  orders     = "app/k8s-mvno-orders-0000000000/0000000000000000"
}
