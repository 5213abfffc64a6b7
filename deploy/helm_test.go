package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/yaml"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

const chartDir = "helm/alertmanager-feishu"

// helmTemplate renders the chart as helm install --dry-run would, with no
// cluster, as release alertmanager-feishu in monitoring, with the values
// files given (in the chart's folder) and then set, and decodes every
// object strictly.
func helmTemplate(t *testing.T, files []string, set map[string]any) ([]any, error) {
	t.Helper()
	chart, err := loader.Load(chartDir)
	require.NoError(t, err)
	vals := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(chartDir, f))
		require.NoError(t, err)
		var v map[string]any
		require.NoError(t, yaml.Unmarshal(b, &v), f)
		vals = chartutil.MergeTables(v, vals)
	}
	// MergeTables changes its first argument: merge into a copy of set.
	b, err := yaml.Marshal(set)
	require.NoError(t, err)
	var top map[string]any
	require.NoError(t, yaml.Unmarshal(b, &top))
	if top == nil {
		top = map[string]any{}
	}
	vals = chartutil.MergeTables(top, vals)

	install := action.NewInstall(&action.Configuration{})
	install.DryRun = true
	install.ClientOnly = true
	install.ReleaseName = "alertmanager-feishu"
	install.Namespace = "monitoring"
	// Without a cluster Helm takes Kubernetes 1.20, older than the chart
	// allows.
	kv, err := chartutil.ParseKubeVersion("v1.33.0")
	require.NoError(t, err)
	install.KubeVersion = kv
	rel, err := install.Run(chart, vals)
	if err != nil {
		return nil, err
	}
	nodes, err := kio.FromBytes([]byte(rel.Manifest))
	require.NoError(t, err)
	var objs []any
	for _, n := range nodes {
		b, err := n.MarshalJSON()
		require.NoError(t, err)
		objs = append(objs, decodeStrict(t, "helm: "+n.GetKind()+" "+n.GetName(), b))
	}
	return objs, nil
}

func TestHelmChart(t *testing.T) {
	common := []string{
		"Deployment alertmanager-feishu", "Service alertmanager-feishu", "PodDisruptionBudget alertmanager-feishu",
		"ConfigMap alertmanager-feishu",
	}
	optional := []string{
		"NetworkPolicy alertmanager-feishu", "ServiceMonitor alertmanager-feishu", "PrometheusRule alertmanager-feishu",
		"ConfigMap alertmanager-feishu-dashboard",
	}
	allOn := map[string]any{
		"networkPolicy":  map[string]any{"enabled": true},
		"serviceMonitor": map[string]any{"enabled": true},
		"prometheusRule": map[string]any{"enabled": true},
		"dashboard":      map[string]any{"enabled": true},
	}
	file := append([]string{"PersistentVolumeClaim alertmanager-feishu-data"}, common...)
	redis := append([]string{"StatefulSet alertmanager-feishu-redis", "Service alertmanager-feishu-redis"}, common...)
	for name, c := range map[string]struct {
		files []string
		set   map[string]any
		want  want
	}{
		"default": {nil, nil, want{replicas: 1, backend: "file", objects: file}},
		"redis": {[]string{"values-redis.yaml"}, nil,
			want{replicas: 2, backend: "redis", redisDeployed: true, objects: redis}},
		"default, all on": {nil, allOn, want{replicas: 1, backend: "file", objects: append(file, optional...)}},
		"redis, all on": {[]string{"values-redis.yaml"}, allOn, want{replicas: 2, backend: "redis", redisDeployed: true,
			objects: append(append(redis, optional...), "NetworkPolicy alertmanager-feishu-redis")}},
		"own redis": {[]string{"values-redis.yaml"}, map[string]any{
			"networkPolicy": map[string]any{"enabled": true},
			"state":         map[string]any{"redis": map[string]any{"deploy": false, "addresses": []any{"redis.example:6379"}}},
		}, want{replicas: 2, backend: "redis", objects: append([]string{"NetworkPolicy alertmanager-feishu"}, common...)}},
	} {
		t.Run(name, func(t *testing.T) {
			objs, err := helmTemplate(t, append([]string{"values.yaml"}, c.files...), c.set)
			require.NoError(t, err)
			r := checkRendering(t, objs, c.want)
			require.NotEmpty(t, r.dep.Spec.Template.Annotations["checksum/config"], "a changed routing.yaml rolls the pods")
			// The chart paces as the kustomization of the same backend
			// does (values-redis.yaml follows deploy/kubernetes/redis).
			kust := map[string]string{"file": "kubernetes/base/routing.yaml", "redis": "kubernetes/redis/routing.yaml"}[c.want.backend]
			b, err := os.ReadFile(kust)
			require.NoError(t, err)
			kcfg, err := config.Parse(b)
			require.NoError(t, err)
			require.Equal(t, kcfg.Feishu.RateLimit, r.cfg.Feishu.RateLimit, "rate limits as in %s", kust)
			for _, o := range objs {
				switch o := o.(type) {
				case *monitoringv1.PrometheusRule:
					requireSameRules(t, o)
				case *corev1.ConfigMap:
					if o.Name == "alertmanager-feishu-dashboard" {
						want, err := os.ReadFile("grafana/alertmanager-feishu.json")
						require.NoError(t, err)
						require.JSONEq(t, string(want), o.Data["alertmanager-feishu.json"])
						require.Equal(t, "1", o.Labels["grafana_dashboard"])
					}
				}
			}
		})
	}
}

// The chart's Deployment mounts routing.yaml, the Secret and (with the file
// store) the state volume as the kustomize base does.
func TestHelmMountsAsKustomize(t *testing.T) {
	objs, err := helmTemplate(t, []string{"values.yaml"}, nil)
	require.NoError(t, err)
	chartDep := deployment(t, objs)
	baseDep := deployment(t, build(t, "kubernetes/base"))
	pod, base := chartDep.Spec.Template.Spec, baseDep.Spec.Template.Spec
	require.Equal(t, base.Containers[0].VolumeMounts, pod.Containers[0].VolumeMounts)
	require.Equal(t, base.Containers[0].Args, pod.Containers[0].Args)
	require.Equal(t, base.Containers[0].Resources, pod.Containers[0].Resources)
	require.Equal(t, base.SecurityContext, pod.SecurityContext)
	require.Len(t, pod.Volumes, len(base.Volumes))
	for i, v := range pod.Volumes {
		b := base.Volumes[i]
		require.Equal(t, b.Name, v.Name)
		if b.ConfigMap != nil {
			// kustomize's name has the content's hash; the chart's pods
			// roll by the checksum annotation instead.
			require.NotNil(t, v.ConfigMap)
			continue
		}
		require.Equal(t, b.VolumeSource, v.VolumeSource, v.Name)
	}
}

// The chart refuses values that would deploy something broken.
func TestHelmRefuses(t *testing.T) {
	for name, set := range map[string]map[string]any{
		"two pods on the file store": {"replicas": 2},
		"redis nowhere": {"replicas": 2, "state": map[string]any{"backend": "redis",
			"redis": map[string]any{"deploy": false}}},
		"unknown backend": {"state": map[string]any{"backend": "etcd"}},
		"no Secret":       {"existingSecret": ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := helmTemplate(t, []string{"values.yaml"}, set)
			require.Error(t, err)
		})
	}
}

// A changed routing.yaml changes the pod template's checksum.
func TestHelmChecksumFollowsConfig(t *testing.T) {
	sum := func(set map[string]any) string {
		objs, err := helmTemplate(t, []string{"values.yaml"}, set)
		require.NoError(t, err)
		return deployment(t, objs).Spec.Template.Annotations["checksum/config"]
	}
	require.NotEqual(t, sum(nil), sum(map[string]any{"config": map[string]any{"feishu": map[string]any{"app_id": "cli_other"}}}))
	require.Equal(t, sum(nil), sum(map[string]any{"replicas": 1}))
}

// The chart's copies of the rules and the dashboard are the originals
// (go generate in deploy/ makes them).
func TestChartCopies(t *testing.T) {
	for orig, cp := range map[string]string{
		"kubernetes/base/prometheusrule.yaml": chartDir + "/files/prometheusrule.yaml",
		"grafana/alertmanager-feishu.json":    chartDir + "/files/alertmanager-feishu.json",
	} {
		a, err := os.ReadFile(orig)
		require.NoError(t, err)
		b, err := os.ReadFile(cp)
		require.NoError(t, err)
		require.True(t, bytes.Equal(a, b), "%s differs from %s: run go generate in deploy/", cp, orig)
	}
}

// requireSameRules checks a rendered PrometheusRule's groups against the
// kustomize base's.
func requireSameRules(t *testing.T, got *monitoringv1.PrometheusRule) {
	t.Helper()
	b, err := os.ReadFile("kubernetes/base/prometheusrule.yaml")
	require.NoError(t, err)
	j, err := yaml.YAMLToJSON(b)
	require.NoError(t, err)
	want := decodeStrict(t, "prometheusrule.yaml", j).(*monitoringv1.PrometheusRule)
	require.Equal(t, want.Spec, got.Spec)
}

func deployment(t *testing.T, objs []any) *appsv1.Deployment {
	t.Helper()
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			return d
		}
	}
	t.Fatal("no Deployment")
	return nil
}
