// Package deploy holds no code: it is the module of the deployment files'
// tests, which need Kubernetes, kustomize and prometheus-operator types that
// the service itself has no use for.
package deploy
