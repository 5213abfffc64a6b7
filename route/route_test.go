package route

import (
	"testing"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

const tree = `
feishu: {app_id: cli_x, app_secret: s}
receivers:
  - {name: default, chat_id: oc_1}
  - {name: infra, chat_id: oc_2}
  - {name: critical, chat_id: oc_3}
  - {name: db, chat_id: oc_4}
  - {name: db-critical, chat_id: oc_5}
  - {name: utf8, chat_id: oc_6}
route:
  receiver: default
  routes:
    - matchers: ['team="infra"']
      receiver: infra
      continue: true
    - matchers: ['severity="critical"']
      receiver: critical
    - matchers: ['team=~"db|database"']
      receiver: db
      routes:
        - matchers: ['severity="page"']
          receiver: db-critical
        - matchers: ['env!="prod"']
    - matchers: ['"service.name"="checkout"']
      receiver: utf8
`

func TestReceivers(t *testing.T) {
	c, err := config.Parse([]byte(tree))
	require.NoError(t, err)
	r := New(c.Route)
	for _, tc := range []struct {
		name   string
		labels model.LabelSet
		want   []string
	}{
		{"no child matches: the root takes it", model.LabelSet{"alertname": "X"}, []string{"default"}},
		{"continue lets the next sibling match too", model.LabelSet{"team": "infra", "severity": "critical"}, []string{"infra", "critical"}},
		{"continue with no further match", model.LabelSet{"team": "infra"}, []string{"infra"}},
		{"first match without continue stops", model.LabelSet{"severity": "critical", "team": "db"}, []string{"critical"}},
		{"an earlier sibling wins over a nested route", model.LabelSet{"team": "database", "severity": "critical"}, []string{"critical"}},
		{"nested child wins over its parent", model.LabelSet{"team": "database", "severity": "page"}, []string{"db-critical"}},
		{"nested child that matches nothing leaves the parent", model.LabelSet{"team": "db", "env": "prod"}, []string{"db"}},
		{"nested child inherits the parent's receiver", model.LabelSet{"team": "db", "env": "staging"}, []string{"db"}},
		{"regex is anchored", model.LabelSet{"team": "dbx"}, []string{"default"}},
		{"UTF-8 label names", model.LabelSet{"service.name": "checkout"}, []string{"utf8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, r.Receivers(tc.labels))
		})
	}
}

func TestReceiversEachOnce(t *testing.T) {
	c, err := config.Parse([]byte(`
feishu: {app_id: cli_x, app_secret: s}
receivers: [{name: a, chat_id: oc_1}, {name: b, chat_id: oc_2}]
route:
  receiver: b
  routes:
    - {matchers: ['x="1"'], receiver: a, continue: true}
    - {matchers: ['y="1"'], receiver: a}
`))
	require.NoError(t, err)
	r := New(c.Route)
	require.Len(t, r.Match(model.LabelSet{"x": "1", "y": "1"}), 2)
	require.Equal(t, []string{"a"}, r.Receivers(model.LabelSet{"x": "1", "y": "1"}))
}
