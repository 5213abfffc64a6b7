package config

import (
	"testing"

	"github.com/prometheus/alertmanager/matcher/parse"
	"go.yaml.in/yaml/v3"
)

// FuzzRouteMatchers puts arbitrary text in a route's matchers and in a
// receiver's all_when. Parsing must never panic, must accept exactly what
// Alertmanager's matcher parser accepts, and a route it accepts must match
// a label set without panicking.
func FuzzRouteMatchers(f *testing.F) {
	for _, seed := range []string{
		`team="infra"`, `severity=~"critical|page"`, `"service.name"="checkout"`, `a!="b", c!~"d.*"`,
		`{team="infra"}`, `team=infra`, `team=~"("`, `"\xff"="x"`, ``, `=`, `a="\u00e9\\"`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, matcher string) {
		doc, err := yaml.Marshal(map[string]any{
			"feishu": map[string]any{"app_id": "cli_x", "app_secret": "s"},
			"receivers": []any{map[string]any{
				"name": "infra", "chat_id": "oc_x",
				"mentions": map[string]any{"all_when": []string{matcher}},
			}},
			"route": map[string]any{
				"receiver": "infra",
				"routes":   []any{map[string]any{"receiver": "infra", "matchers": []string{matcher}}},
			},
		})
		if err != nil {
			t.Skip() // not a string YAML can carry
		}
		var back struct {
			Route struct{ Routes []struct{ Matchers []string } }
		}
		if yaml.Unmarshal(doc, &back) != nil || back.Route.Routes[0].Matchers[0] != matcher {
			t.Skip() // YAML does not carry this string unchanged (yaml.v3 and some leading newlines)
		}
		c, err := Parse(doc)
		_, amErr := parse.Matchers(matcher)
		if (err == nil) != (amErr == nil) {
			t.Fatalf("matcher %q: config error %v, alertmanager error %v", matcher, err, amErr)
		}
		if err != nil {
			return
		}
		for _, m := range c.Route.Routes[0].Parsed {
			m.Matches("x")
		}
	})
}
