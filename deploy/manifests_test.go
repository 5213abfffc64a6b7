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
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
	"github.com/alertmanager-feishu/alertmanager-feishu/internal/amtest"
)

// kinds are the objects the manifests may hold, each decoded into its API
// type; anything else is a mistake.
var kinds = map[string]func() any{
	"apps/v1/Deployment":                                func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                               func() any { return &appsv1.StatefulSet{} },
	"v1/ConfigMap":                                      func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                                         func() any { return &corev1.Secret{} },
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

// build runs kustomize on dir and decodes every object it yields.
func build(t *testing.T, dir string) []any {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	require.NoError(t, err, dir)
	var objs []any
	for _, r := range rm.Resources() {
		require.Equal(t, "monitoring", r.GetNamespace(), "%s %s", r.GetKind(), r.GetName())
		b, err := r.MarshalJSON()
		require.NoError(t, err)
		objs = append(objs, decodeStrict(t, dir+": "+r.GetKind()+" "+r.GetName(), b))
	}
	return objs
}

func TestKustomizations(t *testing.T) {
	for dir, want := range map[string]struct {
		replicas int32
		backend  string
		kinds    int
	}{
		"kubernetes/base":  {1, "file", 8},
		"kubernetes/redis": {2, "redis", 9},
	} {
		t.Run(dir, func(t *testing.T) {
			known := exported(t)
			objs := build(t, dir)
			require.Len(t, objs, want.kinds)
			var (
				dep    *appsv1.Deployment
				cfg    *config.Config
				secret *corev1.Secret
			)
			for _, o := range objs {
				switch o := o.(type) {
				case *appsv1.Deployment:
					dep = o
				case *corev1.Secret:
					secret = o
				case *corev1.ConfigMap:
					var err error
					cfg, err = config.Parse([]byte(o.Data["routing.yaml"]))
					require.NoError(t, err, "routing.yaml in the ConfigMap")
				case *corev1.PersistentVolumeClaim:
					require.Equal(t, "file", want.backend, "only the file store needs a volume")
				case *monitoringv1.PrometheusRule:
					for _, g := range o.Spec.Groups {
						for _, r := range g.Rules {
							requireKnownMetrics(t, known, "rule "+r.Alert, r.Expr.String())
						}
					}
				}
			}
			require.NotNil(t, dep)
			require.NotNil(t, cfg)
			require.Equal(t, want.replicas, *dep.Spec.Replicas)
			require.Equal(t, want.backend, cfg.State.Backend)

			pod := dep.Spec.Template.Spec
			require.True(t, *pod.SecurityContext.RunAsNonRoot)
			c := pod.Containers[0]
			require.Equal(t, "/-/ready", c.ReadinessProbe.HTTPGet.Path)
			require.Equal(t, "/-/healthy", c.LivenessProbe.HTTPGet.Path)
			require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
			require.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
			require.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)
			require.False(t, c.Resources.Requests.Cpu().IsZero())
			require.False(t, c.Resources.Requests.Memory().IsZero())

			// Every secret file routing.yaml names is a key of the Secret
			// mounted where it looks.
			for _, file := range []string{cfg.Feishu.AppSecretFile, cfg.Intake.BearerTokenFile, cfg.State.Redis.PasswordFile} {
				if file == "" {
					continue
				}
				require.Equal(t, "/etc/alertmanager-feishu/secret", filepath.Dir(file))
				key := filepath.Base(file)
				_, ok := secret.StringData[key]
				require.True(t, ok, "the Secret has %s", key)
			}
			if cfg.State.Backend == "file" {
				require.Equal(t, appsv1.RecreateDeploymentStrategyType, dep.Spec.Strategy.Type, "one pod at a time holds the state file")
				require.True(t, strings.HasPrefix(cfg.State.Path, "/data/"))
			}
		})
	}
}

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
