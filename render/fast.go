package render

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	tmpltext "text/template"
	"text/template/parse"
	"time"

	"github.com/prometheus/alertmanager/template"
)

// The default title, text and card are also written out in Go below: they
// are what nearly every receiver uses, and text/template, which evaluates
// by reflection, spent most of a render on them. Each function gives the
// bytes its template gives, for any data: TestFastPathEqualsTemplates and
// FuzzFastPathEqualsTemplates hold them to it. A user's template file that
// redefines any template they stand for turns them off, so the engine then
// renders the user's definition.

// fastTemplatesSum is the SHA-256 of the templates/feishu.tmpl that the
// functions below are written for. A change to the file turns them off
// until they are brought in line and this sum with them:
// TestFastPathEqualsTemplates fails meanwhile.
const fastTemplatesSum = "251d3430f41e20db7c990984d9fb750f7139bbdcb232e428bbf53eed2dfe3d86"

// fastWrittenFor reports whether the embedded default templates are those
// the fast path is written for.
func fastWrittenFor() bool {
	b, err := defaults.ReadFile("templates/feishu.tmpl")
	sum := sha256.Sum256(b)
	return err == nil && hex.EncodeToString(sum[:]) == fastTemplatesSum
}

// fastNames are the templates the default strings use, directly or not.
var fastNames = []string{
	"feishu.default.title", "feishu.default.text", "feishu.default.card",
	"feishu.en.title", "feishu.en.text", "feishu.en.card",
	"feishu.zh.title", "feishu.zh.text", "feishu.zh.card",
	"feishu.time", "__subject", "__alertmanagerURL",
}

// fastFuncs renders a default template string without the engine.
var fastFuncs = map[string]func(*Data) string{
	DefaultTitle: fastTitle,
	DefaultText:  func(d *Data) string { return fastBody(d, bodyLayouts[layoutKey{d.Language == "zh", false}]) },
	DefaultCard:  func(d *Data) string { return fastBody(d, bodyLayouts[layoutKey{d.Language == "zh", true}]) },
}

// treesOf are the parse trees of fastNames in set.
func treesOf(set *tmpltext.Template) map[string]*parse.Tree {
	trees := make(map[string]*parse.Tree, len(fastNames))
	for _, name := range fastNames {
		if t := set.Lookup(name); t != nil {
			trees[name] = t.Tree
		}
	}
	return trees
}

// sameTrees reports whether set still has the trees of before, that is,
// no template file redefined any of them.
func sameTrees(before map[string]*parse.Tree, set *tmpltext.Template) bool {
	after := treesOf(set)
	for _, name := range fastNames {
		if before[name] == nil || before[name] != after[name] {
			return false
		}
	}
	return true
}

// timeLayout is feishu.time's.
const timeLayout = "2006-01-02 15:04:05 MST"

// fastTitle is feishu.default.title: Alertmanager's __subject in English,
// feishu.zh.title in Chinese.
func fastTitle(d *Data) string {
	var b strings.Builder
	firing := d.Status == "firing"
	b.WriteByte('[')
	if d.Language == "zh" {
		if firing {
			b.WriteString("告警:")
			b.WriteString(strconv.Itoa(count(d.Alerts, "firing")))
		} else {
			b.WriteString("已恢复")
		}
	} else {
		b.WriteString(strings.ToUpper(d.Status))
		if firing {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(count(d.Alerts, "firing")))
		}
	}
	b.WriteString("] ")
	writeValues(&b, d.GroupLabels, nil)
	more := len(d.CommonLabels) > len(d.GroupLabels)
	if d.Language == "zh" {
		if more {
			b.WriteString(" (")
			writeValues(&b, d.CommonLabels, d.GroupLabels)
			b.WriteByte(')')
		}
	} else {
		b.WriteByte(' ')
		if more {
			b.WriteByte('(')
			writeValues(&b, d.CommonLabels, d.GroupLabels)
			b.WriteByte(')')
		}
	}
	return b.String()
}

type layoutKey struct{ zh, card bool }

// bodyLayout is what tells the four default bodies apart: the words, the
// card's bold and its time of resolution, and the text's links.
type bodyLayout struct {
	allResolved string // the line; a card's ends in the time it resolved
	resolvedAt  bool
	// someResolved is the line of a partly resolved group, around its
	// counts of resolved and firing alerts.
	someResolved                           [3]string
	severity, labels, summary, description string
	firing, resolved                       [2]string // around the count
	since, comma, arrow                    string
	ended                                  string // before the end of an alert without a start
	source                                 string // text only
	truncated                              [2]string
	alertWord, alertsWord                  string
	alertmanager                           string // text only
}

var bodyLayouts = map[layoutKey]*bodyLayout{
	{zh: false, card: false}: {
		allResolved:  "All alerts resolved.\n",
		someResolved: [3]string{"", " resolved, ", " still firing.\n"},
		severity:     "Severity: ", labels: "Labels: ", summary: "Summary: ", description: "Description: ",
		firing:   [2]string{"\nFiring (", "):\n"},
		resolved: [2]string{"\nResolved (", "):\n"},
		since:    ", since ", comma: ", ", arrow: " → ", ended: ", ended ",
		source:       "  Source: ",
		truncated:    [2]string{"\n… and ", " more "},
		alertWord:    "alert not shown.\n",
		alertsWord:   "alerts not shown.\n",
		alertmanager: "\nAlertmanager: ",
	},
	{zh: true, card: false}: {
		allResolved:  "所有告警已恢复。\n",
		someResolved: [3]string{"", " 条已恢复，", " 条仍在告警。\n"},
		severity:     "级别：", labels: "标签：", summary: "摘要：", description: "描述：",
		firing:   [2]string{"\n告警中（", "）：\n"},
		resolved: [2]string{"\n已恢复（", "）：\n"},
		since:    "，开始于 ", comma: "，", arrow: " → ", ended: "，结束于 ",
		source:       "  来源：",
		truncated:    [2]string{"\n… 另有 ", " 条告警未显示。\n"},
		alertmanager: "\nAlertmanager：",
	},
	{zh: false, card: true}: {
		allResolved: "**All alerts resolved** at ", resolvedAt: true,
		someResolved: [3]string{"**", " resolved, ", " still firing**\n"},
		severity:     "**Severity:** ", labels: "**Labels:** ", summary: "**Summary:** ", description: "**Description:** ",
		firing:   [2]string{"\n**Firing (", ")**\n"},
		resolved: [2]string{"\n**Resolved (", ")**\n"},
		since:    ", since ", comma: ", ", arrow: " → ", ended: ", ended ",
		truncated:  [2]string{"\n… and ", " more "},
		alertWord:  "alert not shown.\n",
		alertsWord: "alerts not shown.\n",
	},
	{zh: true, card: true}: {
		allResolved: "**所有告警已恢复**，恢复于 ", resolvedAt: true,
		someResolved: [3]string{"**", " 条已恢复，", " 条仍在告警**\n"},
		severity:     "**级别：**", labels: "**标签：**", summary: "**摘要：**", description: "**描述：**",
		firing:   [2]string{"\n**告警中（", "）**\n"},
		resolved: [2]string{"\n**已恢复（", "）**\n"},
		since:    "，开始于 ", comma: "，", arrow: " → ", ended: "，结束于 ",
		truncated: [2]string{"\n… 另有 ", " 条告警未显示。\n"},
	},
}

// fastBody is feishu.default.text or feishu.default.card, by l.
func fastBody(d *Data, l *bodyLayout) string {
	var b strings.Builder
	b.Grow(512 + 256*len(d.Alerts))
	var scratch [64]byte
	writeTime := func(t time.Time) { b.Write(t.AppendFormat(scratch[:0], timeLayout)) }
	writeInt := func(n int) { b.Write(strconv.AppendInt(scratch[:0], int64(n), 10)) }
	firing, resolved := count(d.Alerts, "firing"), count(d.Alerts, "resolved")

	switch {
	case d.Status == "resolved":
		b.WriteString(l.allResolved)
		if l.resolvedAt {
			writeTime(d.ResolvedAt)
			b.WriteByte('\n')
		}
	case resolved > 0:
		b.WriteString(l.someResolved[0])
		writeInt(resolved)
		b.WriteString(l.someResolved[1])
		writeInt(firing)
		b.WriteString(l.someResolved[2])
	}
	line := func(prefix, value string) {
		if value != "" {
			b.WriteString(prefix)
			b.WriteString(value)
			b.WriteByte('\n')
		}
	}
	line(l.severity, d.CommonLabels["severity"])
	if hasOther(d.CommonLabels, "alertname", "severity") {
		b.WriteString(l.labels)
		writePairs(&b, d.CommonLabels, func(k string) bool { return k == "alertname" || k == "severity" })
		b.WriteByte('\n')
	}
	commonSummary := d.CommonAnnotations["summary"]
	line(l.summary, commonSummary)
	line(l.description, d.CommonAnnotations["description"])

	// alert writes an alert's labels that not all of the group shares, or
	// its alertname when it shares them all.
	alert := func(a *template.Alert) {
		b.WriteString("• ")
		common := func(k string) bool { _, ok := d.CommonLabels[k]; return ok }
		if writePairs(&b, a.Labels, common) == 0 {
			b.WriteString(a.Labels["alertname"])
		}
	}
	// section writes the count of the alerts of status under its heading,
	// then each of them: its labels, and what tail adds.
	section := func(status string, heading [2]string, n int, tail func(a *template.Alert)) {
		if n == 0 {
			return
		}
		b.WriteString(heading[0])
		writeInt(n)
		b.WriteString(heading[1])
		for i := range d.Alerts {
			if a := &d.Alerts[i]; a.Status == status {
				alert(a)
				tail(a)
			}
		}
	}
	section("firing", l.firing, firing, func(a *template.Alert) {
		if !a.StartsAt.IsZero() {
			b.WriteString(l.since)
			writeTime(a.StartsAt)
		}
		b.WriteByte('\n')
		if s := a.Annotations["summary"]; s != "" && s != commonSummary {
			line("  ", s)
		}
		if l.source != "" {
			line(l.source, a.GeneratorURL)
		}
	})
	section("resolved", l.resolved, resolved, func(a *template.Alert) {
		if !a.StartsAt.IsZero() {
			b.WriteString(l.comma)
			writeTime(a.StartsAt)
			b.WriteString(l.arrow)
		} else {
			b.WriteString(l.ended)
		}
		writeTime(a.EndsAt)
		b.WriteByte('\n')
	})
	if n := d.TruncatedAlerts; n != 0 {
		b.WriteString(l.truncated[0])
		b.Write(strconv.AppendUint(scratch[:0], n, 10))
		b.WriteString(l.truncated[1])
		if n == 1 {
			b.WriteString(l.alertWord)
		} else {
			b.WriteString(l.alertsWord)
		}
	}
	if l.alertmanager != "" && d.ExternalURL != "" {
		// __alertmanagerURL
		b.WriteString(l.alertmanager)
		b.WriteString(d.ExternalURL)
		b.WriteString("/#/alerts?receiver=")
		b.WriteString(urlQuery(d.Receiver))
		b.WriteByte('\n')
	}
	return b.String()
}

// urlQuery is text/template's urlquery of one string.
var urlQuery = tmpltext.URLQueryEscaper

func count(as template.Alerts, status string) int {
	n := 0
	for i := range as {
		if as[i].Status == status {
			n++
		}
	}
	return n
}

// hasOther reports whether kv has a key other than a and b.
func hasOther(kv template.KV, a, b string) bool {
	n := len(kv)
	if _, ok := kv[a]; ok {
		n--
	}
	if _, ok := kv[b]; ok {
		n--
	}
	return n > 0
}

// sortedKeys are kv's keys but those skip reports, in the order of
// template.KV.SortedPairs: alertname first, then the rest sorted.
func sortedKeys(buf []string, kv template.KV, skip func(string) bool) []string {
	keys := buf[:0]
	alertname := false
	for k := range kv {
		if skip != nil && skip(k) {
			continue
		}
		if k == "alertname" {
			alertname = true
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if alertname {
		keys = slices.Insert(keys, 0, "alertname")
	}
	return keys
}

// writePairs writes kv.Remove(skipped).String(), and says how many pairs
// it wrote.
func writePairs(b *strings.Builder, kv template.KV, skip func(string) bool) int {
	var buf [16]string
	keys := sortedKeys(buf[:], kv, skip)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(kv[k])
	}
	return len(keys)
}

// writeValues writes kv.Remove(except.Names).Values joined by spaces.
func writeValues(b *strings.Builder, kv, except template.KV) {
	var buf [16]string
	var skip func(string) bool
	if except != nil {
		skip = func(k string) bool { _, ok := except[k]; return ok }
	}
	for i, k := range sortedKeys(buf[:], kv, skip) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[k])
	}
}
