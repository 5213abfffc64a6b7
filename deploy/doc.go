// Package deploy holds no code: it is the module of the deployment files'
// tests, which need Kubernetes, kustomize and prometheus-operator types that
// the service itself has no use for.
package deploy

// The Helm chart's alert rules and dashboard are copies of the ones
// deploy/kubernetes and deploy/grafana hold, made by go generate here
// (TestChartCopies fails while they differ):
//go:generate cp kubernetes/base/prometheusrule.yaml helm/alertmanager-feishu/files/prometheusrule.yaml
//go:generate cp grafana/alertmanager-feishu.json helm/alertmanager-feishu/files/alertmanager-feishu.json
