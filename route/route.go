// Package route picks the receivers of an alert group by walking the route
// tree of routing.yaml with Alertmanager's own semantics.
package route

import (
	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// Route is a node of the route tree.
type Route struct {
	Receiver string
	Matchers labels.Matchers
	Continue bool
	Routes   []*Route
}

// New builds the tree from a validated configuration, in which children
// already carry the receiver they inherit.
func New(c *config.Route) *Route {
	r := &Route{Receiver: c.Receiver, Matchers: c.Parsed, Continue: c.Continue}
	for _, child := range c.Routes {
		r.Routes = append(r.Routes, New(child))
	}
	return r
}

// Match returns the routes that take the label set, as dispatch.Route.Match
// does: depth first; the first matching child wins unless it has continue
// set; a node none of whose children match takes the set itself.
func (r *Route) Match(ls model.LabelSet) []*Route {
	if !r.Matchers.Matches(ls) {
		return nil
	}
	var all []*Route
	for _, child := range r.Routes {
		matches := child.Match(ls)
		all = append(all, matches...)
		if matches != nil && !child.Continue {
			break
		}
	}
	if len(all) == 0 {
		all = append(all, r)
	}
	return all
}

// Receivers returns the names of the receivers the label set reaches, in
// route order, each once: two routes to one receiver would otherwise send the
// same group to the same chat twice.
func (r *Route) Receivers(ls model.LabelSet) []string {
	var names []string
	seen := map[string]bool{}
	for _, m := range r.Match(ls) {
		if !seen[m.Receiver] {
			seen[m.Receiver] = true
			names = append(names, m.Receiver)
		}
	}
	return names
}
