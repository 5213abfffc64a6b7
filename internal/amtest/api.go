package amtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Matcher is a silence's matcher as API v2 shows it.
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

// Silence is a silence as GET /api/v2/silence/{id} shows it.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
	Status    struct {
		State string `json:"state"` // active, pending or expired
	} `json:"status"`
}

// AlertStatus is an alert as GET /api/v2/alerts shows it: its labels and
// what mutes it, which Alertmanager works out when asked.
type AlertStatus struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State      string   `json:"state"` // active, suppressed or unprocessed
		SilencedBy []string `json:"silencedBy"`
	} `json:"status"`
}

// Silence returns the silence id; an unknown one is an error.
func (am *Alertmanager) Silence(id string) (Silence, error) {
	var s Silence
	err := am.getJSON("/api/v2/silence/"+url.PathEscape(id), &s)
	return s, err
}

// Alerts returns every alert Alertmanager holds, silenced ones included.
func (am *Alertmanager) Alerts() ([]AlertStatus, error) {
	var a []AlertStatus
	err := am.getJSON("/api/v2/alerts", &a)
	return a, err
}

func (am *Alertmanager) getJSON(path string, v any) error {
	resp, err := http.Get(am.URL + path)
	if err != nil {
		return fmt.Errorf("get %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("get %s: %w", path, err)
	}
	return nil
}

// Silences returns every silence Alertmanager holds, expired ones included.
func (am *Alertmanager) Silences() ([]Silence, error) {
	var s []Silence
	err := am.getJSON("/api/v2/silences", &s)
	return s, err
}
