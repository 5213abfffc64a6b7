package amtest

import (
	"bytes"
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

// AddSilence makes a silence of matchers until endsAt through the API, as
// Alertmanager's UI and amtool do, and returns its ID.
func (am *Alertmanager) AddSilence(matchers []Matcher, endsAt time.Time) (string, error) {
	b, err := json.Marshal(map[string]any{
		"matchers":  matchers,
		"startsAt":  time.Now().UTC(),
		"endsAt":    endsAt.UTC(),
		"createdBy": "amtest",
		"comment":   "made in the test, outside the card",
	})
	if err != nil {
		return "", err
	}
	resp, err := http.Post(am.URL+"/api/v2/silences", "application/json", bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("post silence: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("post silence: status %d", resp.StatusCode)
	}
	var answer struct {
		SilenceID string `json:"silenceID"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return "", fmt.Errorf("post silence: %w", err)
	}
	return answer.SilenceID, nil
}

// ExpireSilence ends silence id now through the API.
func (am *Alertmanager) ExpireSilence(id string) error {
	req, err := http.NewRequest(http.MethodDelete, am.URL+"/api/v2/silence/"+url.PathEscape(id), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("expire silence: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("expire silence: status %d", resp.StatusCode)
	}
	return nil
}
