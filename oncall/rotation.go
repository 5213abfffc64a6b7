// Package oncall decides who is mentioned: who is on call in a rotation
// at a given time, and what a receiver's mention policy makes of a
// notification. It resolves emails to open_ids through a Directory.
package oncall

import (
	"fmt"
	"time"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

// Rotation is a config.Rotation with its times read in its own zone.
type Rotation struct {
	Name      string
	loc       *time.Location
	start     time.Time
	shift     time.Duration
	members   []config.Person
	overrides []override
}

type override struct {
	start, end time.Time
	member     config.Person
}

// NewRotation reads a validated rotation.
func NewRotation(r *config.Rotation) (*Rotation, error) {
	loc, err := time.LoadLocation(r.Timezone)
	if err != nil {
		return nil, fmt.Errorf("rotation %q: %w", r.Name, err)
	}
	start, err := time.ParseInLocation(config.TimeLayout, r.Start, loc)
	if err != nil {
		return nil, fmt.Errorf("rotation %q: start: %w", r.Name, err)
	}
	rot := &Rotation{Name: r.Name, loc: loc, start: start, shift: time.Duration(r.Shift), members: r.Members}
	for i, o := range r.Overrides {
		s, err1 := time.ParseInLocation(config.TimeLayout, o.Start, loc)
		e, err2 := time.ParseInLocation(config.TimeLayout, o.End, loc)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("rotation %q: overrides[%d]: bad time", r.Name, i)
		}
		rot.overrides = append(rot.overrides, override{start: s, end: e, member: o.Member})
	}
	if rot.shift <= 0 || len(rot.members) == 0 {
		return nil, fmt.Errorf("rotation %q: needs a positive shift and members", r.Name)
	}
	return rot, nil
}

// At returns who is on call at t: the member of an override covering t
// (the first listed wins), else the member whose shift covers t. Before
// the rotation's start nobody is.
//
// A shift that is a whole number of days is counted in calendar days of
// the rotation's zone: a 24h shift starting at 10:00 always hands over at
// 10:00 local time, and is 23 or 25 hours long across a daylight-saving
// change. Other shifts are exact durations.
func (r *Rotation) At(t time.Time) (config.Person, bool) {
	for _, o := range r.overrides {
		if !t.Before(o.start) && t.Before(o.end) {
			return o.member, true
		}
	}
	if t.Before(r.start) {
		return config.Person{}, false
	}
	k := r.shiftAt(t)
	return r.members[k%len(r.members)], true
}

// shiftAt is the number of the shift covering t, which is not before start.
func (r *Rotation) shiftAt(t time.Time) int {
	if r.shift%(24*time.Hour) != 0 {
		return int(t.Sub(r.start) / r.shift)
	}
	days := int(r.shift / (24 * time.Hour))
	// An estimate from the elapsed time, off by at most one shift around
	// a daylight-saving change, corrected against the calendar.
	k := int(t.Sub(r.start) / r.shift)
	for k > 0 && r.begin(k, days).After(t) {
		k--
	}
	for !r.begin(k+1, days).After(t) {
		k++
	}
	return k
}

// begin is when shift k of days calendar days begins.
func (r *Rotation) begin(k, days int) time.Time {
	return r.start.AddDate(0, 0, k*days)
}
