package oncall

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/alertmanager-feishu/alertmanager-feishu/config"
)

var (
	alice = config.Person{Email: "alice@example.com"}
	bob   = config.Person{OpenID: "ou_bob"}
	carol = config.Person{UserID: "carol"}
	dave  = config.Person{OpenID: "ou_dave"}
)

func rotation(t *testing.T, tz, start string, shift time.Duration, overrides ...config.Override) *Rotation {
	t.Helper()
	r, err := NewRotation(&config.Rotation{
		Name: "primary", Timezone: tz, Start: start, Shift: model.Duration(shift),
		Members: []config.Person{alice, bob, carol}, Overrides: overrides,
	})
	require.NoError(t, err)
	return r
}

func at(t *testing.T, tz, local string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(tz)
	require.NoError(t, err)
	ts, err := time.ParseInLocation(config.TimeLayout, local, loc)
	require.NoError(t, err)
	return ts
}

func TestRotationAt(t *testing.T) {
	const sh = "Asia/Shanghai"
	daily := rotation(t, sh, "2026-01-05T10:00:00", 24*time.Hour,
		config.Override{Start: "2026-01-10T12:00:00", End: "2026-01-11T08:00:00", Member: dave})
	eightHours := rotation(t, "UTC", "2026-01-05T00:00:00", 8*time.Hour)
	weekly := rotation(t, sh, "2026-01-05T09:00:00", 7*24*time.Hour)
	for _, tc := range []struct {
		name string
		r    *Rotation
		t    time.Time
		want config.Person
		none bool
	}{
		{"before start", daily, at(t, sh, "2026-01-05T09:59:59"), config.Person{}, true},
		{"at start", daily, at(t, sh, "2026-01-05T10:00:00"), alice, false},
		{"end of the first shift", daily, at(t, sh, "2026-01-06T09:59:59"), alice, false},
		{"second shift", daily, at(t, sh, "2026-01-06T10:00:00"), bob, false},
		{"third shift", daily, at(t, sh, "2026-01-07T23:00:00"), carol, false},
		{"wraps around", daily, at(t, sh, "2026-01-08T10:00:00"), alice, false},
		{"same instant in another zone", daily, at(t, "UTC", "2026-01-06T02:00:00"), bob, false},
		{"override starts", daily, at(t, sh, "2026-01-10T12:00:00"), dave, false},
		{"override ends", daily, at(t, sh, "2026-01-11T08:00:00"), carol, false}, // shift 5, from Jan 10 10:00
		{"override before start", rotation(t, sh, "2026-01-05T10:00:00", 24*time.Hour,
			config.Override{Start: "2026-01-01T00:00:00", End: "2026-01-02T00:00:00", Member: dave}), at(t, sh, "2026-01-01T12:00:00"), dave, false},
		{"eight-hour shifts", eightHours, at(t, "UTC", "2026-01-05T16:00:00"), carol, false},
		{"eight-hour shifts, a day later", eightHours, at(t, "UTC", "2026-01-06T07:59:00"), alice, false},
		{"weekly", weekly, at(t, sh, "2026-01-19T08:59:00"), bob, false},
		{"weekly handover", weekly, at(t, sh, "2026-01-19T09:00:00"), carol, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.r.At(tc.t)
			require.Equal(t, !tc.none, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

// Across daylight-saving changes a daily shift is a calendar day: the
// handover stays at 10:00 local, and the shift is 23 or 25 hours long.
func TestRotationAcrossDaylightSaving(t *testing.T) {
	const ny = "America/New_York"
	r := rotation(t, ny, "2026-03-06T10:00:00", 24*time.Hour) // alice Mar 6, bob Mar 7, carol Mar 8 (23 h), alice Mar 9
	for _, tc := range []struct {
		local string
		want  config.Person
	}{
		{"2026-03-08T09:59:59", bob},
		{"2026-03-08T10:00:00", carol}, // the clocks went forward at 02:00 that night
		{"2026-03-09T09:59:59", carol},
		{"2026-03-09T10:00:00", alice},
		{"2026-10-31T10:00:00", carol}, // 239 days on: 239 % 3 = 2
		{"2026-11-01T09:59:59", carol}, // a 25-hour shift: the clocks went back at 02:00
		{"2026-11-01T10:00:00", alice},
	} {
		got, ok := r.At(at(t, ny, tc.local))
		require.True(t, ok)
		require.Equal(t, tc.want, got, tc.local)
	}
	// Shifts that are not whole days are exact durations: across the
	// spring change, 12 hours after 20:00 is 09:00 local, not 08:00.
	half := rotation(t, ny, "2026-03-07T20:00:00", 12*time.Hour)
	got, _ := half.At(at(t, ny, "2026-03-08T08:30:00"))
	require.Equal(t, alice, got)
	got, _ = half.At(at(t, ny, "2026-03-08T09:00:00"))
	require.Equal(t, bob, got)
}
