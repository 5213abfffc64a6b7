package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	monitoringv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/yaml"

	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
)

// kinds are the objects the manifests may hold, each decoded into its API
// type; anything else is a mistake.
var kinds = map[string]func() any{
	"apps/v1/Deployment":                                func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                               func() any { return &appsv1.StatefulSet{} },
	"v1/ConfigMap":                                      func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                                         func() any { return &corev1.Secret{} },
	"networking.k8s.io/v1/NetworkPolicy":                func() any { return &networkingv1.NetworkPolicy{} },
	"v1/Service":                                        func() any { return &corev1.Service{} },
	"v1/PersistentVolumeClaim":                          func() any { return &corev1.PersistentVolumeClaim{} },
	"policy/v1/PodDisruptionBudget":                     func() any { return &policyv1.PodDisruptionBudget{} },
	"monitoring.coreos.com/v1/ServiceMonitor":           func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule":           func() any { return &monitoringv1.PrometheusRule{} },
	"monitoring.coreos.com/v1alpha1/AlertmanagerConfig": func() any { return &monitoringv1alpha1.AlertmanagerConfig{} },
}

// decodeStrict decodes one object's JSON into its API type, refusing any
// field the type does not have: a typo in a manifest fails here.
func decodeStrict(t *testing.T, where string, b []byte) any {
	t.Helper()
	var meta struct{ APIVersion, Kind string }
	require.NoError(t, json.Unmarshal(b, &meta), where)
	newObj, ok := kinds[meta.APIVersion+"/"+meta.Kind]
	require.True(t, ok, "%s: unexpected %s %s", where, meta.APIVersion, meta.Kind)
	obj := newObj()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(obj), "%s: %s", where, meta.Kind)
	return obj
}

// oldKustomize are the kustomize releases the kustomizations must build
// with besides the library's (sigs.k8s.io/kustomize/api v0.21, kustomize
// 5.8): v5.0, the oldest of kustomize 5, and v5.6 (kubectl 1.33), the
// newest of those that panic on a $patch: delete among other documents of
// one patch file. Each is built with go run from the module proxy (about
// 20 s cold, cached after).
var oldKustomize = []string{"v5.0.1", "v5.6.0"}

// build runs kustomize on dir, the library and each of oldKustomize, and
// decodes every object they yield; they must yield the same objects.
func build(t *testing.T, dir string) []any {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err, dir)
	var objs []any
	var docs []string
	for _, r := range rm.Resources() {
		require.Equal(t, "monitoring", r.GetNamespace(), "%s %s", r.GetKind(), r.GetName())
		b, err := r.MarshalJSON()
		require.NoError(t, err)
		objs = append(objs, decodeStrict(t, dir+": "+r.GetKind()+" "+r.GetName(), b))
		docs = append(docs, string(b))
	}
	goBin, err := exec.LookPath("go")
	require.NoError(t, err)
	for _, v := range oldKustomize {
		cmd := exec.Command(goBin, "run", "sigs.k8s.io/kustomize/kustomize/v5@"+v, "build", dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "kustomize %s build %s:\n%s", v, dir, firstLines(stderr.String(), 12))
		nodes, err := kio.FromBytes(out)
		require.NoError(t, err, "kustomize %s build %s", v, dir)
		var old []string
		for _, n := range nodes {
			b, err := n.MarshalJSON()
			require.NoError(t, err)
			decodeStrict(t, dir+" (kustomize "+v+"): "+n.GetKind()+" "+n.GetName(), b)
			old = append(old, string(b))
		}
		require.ElementsMatch(t, normalize(t, docs), normalize(t, old), "kustomize %s build %s", v, dir)
	}
	return objs
}

// normalize re-encodes JSON objects so that field order and spacing do
// not count.
func normalize(t *testing.T, docs []string) []string {
	t.Helper()
	out := make([]string, len(docs))
	for i, d := range docs {
		var v any
		require.NoError(t, json.Unmarshal([]byte(d), &v))
		b, err := json.Marshal(v)
		require.NoError(t, err)
		out[i] = string(b)
	}
	return out
}

// firstLines is the start of a long output, where a panic or an error
// says what failed, less go's download notes.
func firstLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "go: downloading ") && len(lines) < n {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

func TestKustomizations(t *testing.T) {
	common := []string{
		"Deployment alertmanager-feishu", "Service alertmanager-feishu", "PodDisruptionBudget alertmanager-feishu",
		"NetworkPolicy alertmanager-feishu", "ServiceMonitor alertmanager-feishu", "PrometheusRule alertmanager-feishu",
	}
	for dir, w := range map[string]want{
		"kubernetes/base": {
			replicas: 1, backend: "file",
			objects: append([]string{"PersistentVolumeClaim alertmanager-feishu-data"}, common...),
		},
		"kubernetes/redis": {
			replicas: 2, backend: "redis", redisDeployed: true,
			objects: append([]string{
				"StatefulSet alertmanager-feishu-redis", "Service alertmanager-feishu-redis",
				"NetworkPolicy alertmanager-feishu-redis",
			}, common...),
		},
	} {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			// The generated ConfigMap's name has a hash of its content,
			// which checkRendering does not know in advance.
			var cm *corev1.ConfigMap
			for _, o := range objs {
				if c, ok := o.(*corev1.ConfigMap); ok {
					cm = c
				}
			}
			require.NotNil(t, cm)
			require.Regexp(t, `^alertmanager-feishu-[a-z0-9]{10}$`, cm.Name, "a configMapGenerator's name, with the hash that rolls the pods")
			w.objects = append(w.objects, "ConfigMap "+cm.Name)
			r := checkRendering(t, objs, w)

			// The kustomization's instructions create the Secret with
			// every key routing.yaml reads, and no other.
			b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
			require.NoError(t, err)
			require.Contains(t, string(b), "kubectl -n monitoring create secret generic "+secretName)
			var documented, needed []string
			for _, m := range fromFile.FindAllStringSubmatch(string(b), -1) {
				documented = append(documented, m[1])
			}
			for _, f := range secretFiles(r.cfg) {
				needed = append(needed, filepath.Base(f))
			}
			require.ElementsMatch(t, needed, documented, "the keys of the Secret %s/kustomization.yaml says to create", dir)
		})
	}
}

var fromFile = regexp.MustCompile(`--from-file=([a-z_]+)=`)

// The Prometheus-operator example decodes, and the plain alertmanager.yml
// passes amtool check-config of the pinned Alertmanager.
func TestAlertmanagerExamples(t *testing.T) {
	b, err := os.ReadFile("alertmanager/alertmanagerconfig.yaml")
	require.NoError(t, err)
	j, err := yaml.YAMLToJSON(b)
	require.NoError(t, err)
	amc := decodeStrict(t, "alertmanagerconfig.yaml", j).(*monitoringv1alpha1.AlertmanagerConfig)
	require.Equal(t, "http://alertmanager-feishu.monitoring.svc:9098/webhook", *amc.Spec.Receivers[0].WebhookConfigs[0].URL)

	dir, err := amtest.Binaries()
	require.NoError(t, err)
	// The token file it names does not exist here; amtool only checks
	// that the configuration is well-formed.
	out, err := exec.Command(filepath.Join(dir, "amtool"), "check-config", "alertmanager/alertmanager.yml").CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// The dashboard is valid JSON whose every query names metrics the service
// exports, and it asks for its data source rather than naming one.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/alertmanager-feishu.json")
	require.NoError(t, err)
	var d struct {
		UID    string
		Panels []struct {
			Title      string
			Datasource struct{ UID string }
			Targets    []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(b, &d))
	require.NotEmpty(t, d.UID)
	require.NotEmpty(t, d.Panels)
	known := exported(t)
	for _, p := range d.Panels {
		require.Equal(t, "${datasource}", p.Datasource.UID, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			requireKnownMetrics(t, known, "panel "+p.Title, tg.Expr)
		}
	}
}

var (
	metricName = regexp.MustCompile(`\balertmanager_feishu_[a-z_]+`)
	metricRow  = regexp.MustCompile("^\\| `(alertmanager_feishu_[a-z_]+)")
)

// exported lists the service's metric names from the metrics table in
// docs/operations.md, which is the contract.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../docs/operations.md")
	require.NoError(t, err)
	names := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := metricRow.FindStringSubmatch(line); m != nil {
			names[m[1]] = true
		}
	}
	require.Greater(t, len(names), 10, "the metrics table in docs/operations.md")
	return names
}

// requireKnownMetrics checks that every metric expr names is in known.
func requireKnownMetrics(t *testing.T, known map[string]bool, where, expr string) {
	t.Helper()
	for _, name := range metricName.FindAllString(expr, -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base = strings.TrimSuffix(base, suffix)
		}
		require.True(t, known[base], "%s: %s is not a metric of the service", where, name)
	}
}
