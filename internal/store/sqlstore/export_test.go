package sqlstore

import "time"

// SetHorizonTimes shortens watchHorizon's periods for a test.
func SetHorizonTimes(check, stuck time.Duration) (restore func()) {
	oc, os := horizonCheck, horizonStuck
	horizonCheck, horizonStuck = check, stuck
	return func() { horizonCheck, horizonStuck = oc, os }
}
