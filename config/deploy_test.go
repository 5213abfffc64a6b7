package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The routing.yaml inside each Kubernetes variant's ConfigMap is valid.
func TestDeployManifestsCarryAValidConfig(t *testing.T) {
	paths, err := filepath.Glob("../deploy/kubernetes/*/configmap.yaml")
	require.NoError(t, err)
	require.Len(t, paths, 2, "the file and redis variants")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		var cm struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		require.NoError(t, yaml.Unmarshal(b, &cm), p)
		require.Equal(t, "ConfigMap", cm.Kind, p)
		_, err = Parse([]byte(cm.Data["routing.yaml"]))
		require.NoError(t, err, p)
	}
}
