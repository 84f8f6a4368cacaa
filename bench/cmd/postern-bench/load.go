package main

import (
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// cycleFunc is one login cycle by worker w, its i-th.
type cycleFunc func(w, i int) error

// loadResult is one measurement of a closed loop of clients.
type loadResult struct {
	Rate   float64 // completed cycles per second
	P50    float64 // milliseconds
	P99    float64
	Errors int
	Count  int // completed cycles
}

// runLoad runs clients workers, each repeating cycle without pause for d,
// and measures the completed cycles. A failed cycle counts as an error, not
// as a cycle.
func runLoad(clients int, d time.Duration, cycle cycleFunc) loadResult {
	var wg sync.WaitGroup
	var stop atomic.Bool
	lat := make([][]time.Duration, clients)
	errs := make([]int, clients)
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lat[w] = make([]time.Duration, 0, 4096) // no growing copies in the first thousands of cycles
			for i := 0; !stop.Load(); i++ {
				t := time.Now()
				if err := cycle(w, i); err != nil {
					errs[w]++
					if errs[w] > 1000 {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		}(w)
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	// Cycles finishing after d count, and so does the time they took.
	elapsed := time.Since(start)
	var all []time.Duration
	var r loadResult
	for w := range lat {
		all = append(all, lat[w]...)
		r.Errors += errs[w]
	}
	r.Count = len(all)
	r.Rate = float64(len(all)) / elapsed.Seconds()
	r.P50, r.P99 = percentile(all, 0.50), percentile(all, 0.99)
	return r
}

// percentile returns the q-quantile of ds in milliseconds (nearest rank).
func percentile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}

// user is one login of the benchmark population.
type user struct{ Email, Pass string }

// loginCycle returns the cycle of protocol against addr, worker w using the
// users in turn (each worker its own stride, so that no two workers share a
// user at the same moment).
func loginCycle(proto, addr string, users []user, src func(w int) net.IP) cycleFunc {
	return cycleOf(proto, addr, src, func(w, i int) user { return users[(w*7919+i*131)%len(users)] })
}

// loginInTurn returns the cycle of protocol against addr that logs the users
// in one after the other, all workers together, from where next points,
// which it advances: measurements that share next continue where the last
// stopped, so that no member logs in twice within a minute unless the
// population is smaller than a minute's logins (the scale figure, where a
// member's first login of the minute is the one that writes).
func loginInTurn(proto, addr string, users []user, src func(w int) net.IP, next *atomic.Int64) cycleFunc {
	return cycleOf(proto, addr, src, func(int, int) user { return users[int((next.Add(1)-1)%int64(len(users)))] })
}

func cycleOf(proto, addr string, src func(w int) net.IP, pick func(w, i int) user) cycleFunc {
	f := imapCycle
	if proto == "pop3" {
		f = pop3Cycle
	}
	return func(w, i int) error {
		u := pick(w, i)
		var ip net.IP
		if src != nil {
			ip = src(w)
		}
		return f(addr, ip, u.Email, u.Pass)
	}
}
