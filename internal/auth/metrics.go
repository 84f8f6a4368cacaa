package auth

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the gateway, registered on the Registerer of the Config.
type metrics struct {
	attempts         *prometheus.CounterVec   // protocol, result
	duration         *prometheus.HistogramVec // protocol, result
	throttleDelay    prometheus.Histogram
	paused           prometheus.Counter
	recordsDropped   prometheus.Counter
	recordsCoalesced prometheus.Counter
	recordErrors     prometheus.Counter
	touchDropped     prometheus.Counter
	sessions         *prometheus.GaugeVec   // protocol
	sessionsClosed   *prometheus.CounterVec // event kind
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postern_auth_attempts_total",
			// No reason label: told apart, unknown user, wrong password,
			// refused by policy and suspended would make the counter the
			// oracle that the one generic reply denies. Reasons are in
			// the log and the login records.
			Help: "Login attempts by protocol and result (ok, fail, error).",
		}, []string{"protocol", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "postern_auth_duration_seconds",
			Help:    "Time to answer a third-party login, throttling delay included.",
			Buckets: []float64{.0005, .002, .01, .05, .1, .25, .5, 1, 2, 4, 8, 16, 32},
		}, []string{"protocol", "result"}),
		throttleDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "postern_auth_throttle_delay_seconds",
			Help:    "Delay imposed by per-IP throttling before a login is checked.",
			Buckets: []float64{0, .01, .1, .5, 1, 2, 4, 8, 15, 30, 60, 120},
		}),
		paused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_auth_accounts_paused_total",
			Help: "Accounts whose main-password logins from third-party apps were paused after too many failures.",
		}),
		recordsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_auth_login_records_dropped_total",
			Help: "Login records dropped because the write buffer was full.",
		}),
		recordsCoalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_auth_login_records_coalesced_total",
			Help: "Successful third-party logins not written as records: the same member, credential, protocol and address was recorded within the minute.",
		}),
		recordErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_auth_login_records_failed_total",
			Help: "Login records lost because the database refused the batch.",
		}),
		touchDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_auth_last_used_dropped_total",
			Help: "App-password last-used updates dropped because the queue was full.",
		}),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "postern_auth_live_sessions",
			Help: "Live third-party sessions by protocol.",
		}, []string{"protocol"}),
		sessionsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postern_auth_sessions_closed_total",
			Help: "Live sessions closed because their credential was revoked, by event.",
		}, []string{"event"}),
	}
	for _, c := range []prometheus.Collector{m.attempts, m.duration, m.throttleDelay, m.paused,
		m.recordsDropped, m.recordsCoalesced, m.recordErrors, m.touchDropped, m.sessions, m.sessionsClosed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
