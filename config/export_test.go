package config

import "go.yaml.in/yaml/v3"

func yamlMarshal(v any) (string, error) {
	b, err := yaml.Marshal(v)
	return string(b), err
}
