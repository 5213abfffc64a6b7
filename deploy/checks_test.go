package deploy

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// The names and places the service's manifests agree on, whichever tool
// renders them.
const (
	name       = "alertmanager-feishu"
	configDir  = "/etc/alertmanager-feishu"
	secretDir  = "/etc/alertmanager-feishu/secret"
	secretName = "alertmanager-feishu"
)

// want is what one rendering must hold.
type want struct {
	replicas int32
	backend  string
	// objects are the rendering's "Kind name"s, in any order.
	objects []string
	// redisDeployed: a Redis of the rendering's own, with its policy.
	redisDeployed bool
}

// rendered is a rendering's objects, found by kind.
type rendered struct {
	dep      *appsv1.Deployment
	cm       *corev1.ConfigMap
	cfg      *config.Config
	policy   *networkingv1.NetworkPolicy
	redis    *appsv1.StatefulSet
	redisPol *networkingv1.NetworkPolicy
	pvc      *corev1.PersistentVolumeClaim
	services map[string]*corev1.Service
}

// checkRendering checks what every way of deploying the service must get
// right: the objects there are, the Deployment's pod, that routing.yaml
// parses and agrees with the pod, and the network policies.
func checkRendering(t *testing.T, objs []any, w want) rendered {
	t.Helper()
	known := exported(t)
	r := rendered{services: map[string]*corev1.Service{}}
	var got []string
	for _, o := range objs {
		got = append(got, o.(runtime.Object).GetObjectKind().GroupVersionKind().Kind+" "+o.(metav1.Object).GetName())
		switch o := o.(type) {
		case *appsv1.Deployment:
			r.dep = o
		case *appsv1.StatefulSet:
			r.redis = o
		case *corev1.ConfigMap:
			if _, ok := o.Data["routing.yaml"]; !ok {
				continue // the dashboard's
			}
			r.cm = o
			var err error
			r.cfg, err = config.Parse([]byte(o.Data["routing.yaml"]))
			require.NoError(t, err, "routing.yaml in the ConfigMap")
		case *corev1.Secret:
			t.Fatalf("Secret %s: the Secret is made by hand, never with a placeholder", o.Name)
		case *corev1.PersistentVolumeClaim:
			r.pvc = o
		case *corev1.Service:
			r.services[o.Name] = o
		case *networkingv1.NetworkPolicy:
			if o.Name == name {
				r.policy = o
			} else {
				r.redisPol = o
			}
		case *monitoringv1.PrometheusRule:
			for _, g := range o.Spec.Groups {
				for _, rule := range g.Rules {
					requireKnownMetrics(t, known, "rule "+rule.Alert, rule.Expr.String())
				}
			}
		}
	}
	require.ElementsMatch(t, w.objects, got)
	require.NotNil(t, r.dep)
	require.NotNil(t, r.cfg)
	require.Equal(t, w.replicas, *r.dep.Spec.Replicas)
	require.Equal(t, w.backend, r.cfg.State.Backend)

	pod := r.dep.Spec.Template.Spec
	require.True(t, *pod.SecurityContext.RunAsNonRoot)
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	require.Contains(t, c.Args, "--config.file="+configDir+"/routing.yaml")
	require.Equal(t, "/-/ready", c.ReadinessProbe.HTTPGet.Path)
	require.Equal(t, "/-/healthy", c.LivenessProbe.HTTPGet.Path)
	require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	require.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	require.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)

	// Peak RSS under load measured 34-48 MiB; no CPU limit to throttle
	// answers to Alertmanager.
	require.False(t, c.Resources.Requests.Cpu().IsZero())
	require.GreaterOrEqual(t, c.Resources.Requests.Memory().Cmp(resource.MustParse("64Mi")), 0, "memory request")
	require.GreaterOrEqual(t, c.Resources.Limits.Memory().Cmp(*c.Resources.Requests.Memory()), 0, "memory limit")
	require.True(t, c.Resources.Limits.Cpu().IsZero(), "no CPU limit")

	// routing.yaml and the Secret are mounted where the service looks,
	// the ConfigMap being the rendering's own, the Secret not optional.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	cfgVol := vols[mounts[configDir].Name]
	require.NotNil(t, cfgVol.ConfigMap, "a ConfigMap at %s", configDir)
	require.Equal(t, r.cm.Name, cfgVol.ConfigMap.Name)
	require.True(t, mounts[configDir].ReadOnly)
	secVol := vols[mounts[secretDir].Name]
	require.NotNil(t, secVol.Secret, "a Secret at %s", secretDir)
	require.Equal(t, secretName, secVol.Secret.SecretName)
	require.False(t, secVol.Secret.Optional != nil && *secVol.Secret.Optional, "a pod without its Secret must not start")
	require.True(t, mounts[secretDir].ReadOnly)
	for _, file := range secretFiles(r.cfg) {
		require.Equal(t, secretDir, filepath.Dir(file))
	}

	switch w.backend {
	case "file":
		require.Equal(t, appsv1.RecreateDeploymentStrategyType, r.dep.Spec.Strategy.Type, "one pod at a time holds the state file")
		require.Equal(t, "/data", filepath.Dir(r.cfg.State.Path))
		data := vols[mounts["/data"].Name]
		require.NotNil(t, data.PersistentVolumeClaim, "the state file's volume")
		require.NotNil(t, r.pvc)
		require.Equal(t, r.pvc.Name, data.PersistentVolumeClaim.ClaimName)
	case "redis":
		require.Nil(t, r.pvc, "only the file store needs a volume")
		require.NotContains(t, mounts, "/data")
		require.Equal(t, appsv1.RollingUpdateDeploymentStrategyType, r.dep.Spec.Strategy.Type)
	}
	if w.redisDeployed {
		require.NotNil(t, r.redis)
		host, port, err := net.SplitHostPort(r.cfg.State.Redis.Addresses[0])
		require.NoError(t, err)
		svc := r.services[host]
		require.NotNil(t, svc, "routing.yaml's Redis %s is a Service of the rendering", host)
		require.True(t, selects(svc.Spec.Selector, r.redis.Spec.Template.Labels))
		require.Equal(t, port, fmt.Sprint(svc.Spec.Ports[0].Port))
		// Redis reads its password from the same Secret.
		var redisSecret string
		for _, v := range r.redis.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				redisSecret = v.Secret.SecretName
			}
		}
		require.Equal(t, secretName, redisSecret)
		require.Equal(t, secretDir+"/redis_password", r.cfg.State.Redis.PasswordFile)
	}
	if r.policy != nil {
		checkPolicy(t, r, w)
	}
	return r
}

// secretFiles are the files routing.yaml reads from the Secret.
func secretFiles(cfg *config.Config) []string {
	var files []string
	for _, f := range []string{cfg.Feishu.AppSecretFile, cfg.Intake.BearerTokenFile, cfg.State.Redis.PasswordFile} {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}

// checkPolicy checks that the service's NetworkPolicy selects its pods,
// admits only Alertmanager and Prometheus pods of the monitoring namespace
// to 9098, and lets out what the service needs: DNS, HTTPS, Alertmanager's
// API and, with a Redis of the rendering, that Redis.
func checkPolicy(t *testing.T, r rendered, w want) {
	t.Helper()
	p := r.policy
	podLabels := r.dep.Spec.Template.Labels
	require.True(t, selectsLabels(t, p.Spec.PodSelector, podLabels), "the policy selects the service's pods")
	require.ElementsMatch(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, p.Spec.PolicyTypes)

	require.Len(t, p.Spec.Ingress, 1)
	in := p.Spec.Ingress[0]
	require.Equal(t, []int32{9098}, ports(in.Ports, corev1.ProtocolTCP))
	var from []string
	for _, peer := range in.From {
		require.Nil(t, peer.IPBlock)
		require.NotNil(t, peer.NamespaceSelector, "a namespace, not every one")
		require.Equal(t, map[string]string{"kubernetes.io/metadata.name": "monitoring"}, peer.NamespaceSelector.MatchLabels)
		require.NotNil(t, peer.PodSelector, "pods, not the whole namespace")
		from = append(from, peer.PodSelector.MatchLabels["app.kubernetes.io/name"])
	}
	require.ElementsMatch(t, []string{"alertmanager", "prometheus"}, from)

	egress := map[string]bool{}
	for _, e := range p.Spec.Egress {
		for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
			for _, port := range ports(e.Ports, proto) {
				egress[fmt.Sprintf("%d/%s", port, proto)] = true
			}
		}
		if w.redisDeployed && slices.Contains(ports(e.Ports, corev1.ProtocolTCP), 6379) {
			require.Len(t, e.To, 1)
			require.True(t, selectsLabels(t, *e.To[0].PodSelector, r.redis.Spec.Template.Labels), "egress to the rendering's Redis")
		}
	}
	for _, need := range []string{"53/UDP", "53/TCP", "443/TCP", "9093/TCP"} {
		require.True(t, egress[need], "egress to %s", need)
	}
	require.Equal(t, w.backend == "redis", egress["6379/TCP"], "egress to Redis")

	if w.redisDeployed {
		rp := r.redisPol
		require.NotNil(t, rp, "Redis's own policy")
		require.True(t, selectsLabels(t, rp.Spec.PodSelector, r.redis.Spec.Template.Labels))
		require.False(t, selectsLabels(t, rp.Spec.PodSelector, podLabels))
		require.Len(t, rp.Spec.Ingress, 1)
		require.Equal(t, []int32{6379}, ports(rp.Spec.Ingress[0].Ports, corev1.ProtocolTCP))
		require.Len(t, rp.Spec.Ingress[0].From, 1)
		require.True(t, selectsLabels(t, *rp.Spec.Ingress[0].From[0].PodSelector, podLabels), "Redis admits the service")
		require.Empty(t, rp.Spec.Egress, "Redis reaches nothing")
	}
}

// ports are the numbered ports of a protocol in a policy rule.
func ports(ps []networkingv1.NetworkPolicyPort, proto corev1.Protocol) []int32 {
	var out []int32
	for _, p := range ps {
		if p.Protocol != nil && *p.Protocol == proto && p.Port != nil && p.Port.Type == intstr.Int {
			out = append(out, p.Port.IntVal)
		}
	}
	return out
}

func selectsLabels(t *testing.T, sel metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(&sel)
	require.NoError(t, err)
	return !s.Empty() && s.Matches(labels.Set(l))
}

func selects(sel, l map[string]string) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(l))
}
