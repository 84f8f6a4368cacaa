package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/account"
	"github.com/postern/postern/internal/davrec"
	"github.com/postern/postern/internal/store/sqlstore"
)

// RunDAV runs the DAV store conformance suite (davrec.Store) over a store
// that open returns; the tests share it, each with members of its own.
func RunDAV(t *testing.T, open func(testing.TB) *sqlstore.DB) {
	tests := []struct {
		name string
		fn   func(*testing.T, *DAVEnv)
	}{
		{"DefaultsOnce", testDAVDefaults},
		{"DefaultsRaceFree", testDAVDefaultsRace},
		{"Collections", testDAVCollections},
		{"PutGetReplace", testDAVPut},
		{"Preconditions", testDAVPreconditions},
		{"UIDConflict", testDAVUIDConflict},
		{"DeleteAndChanges", testDAVChanges},
		{"TimeRangeIndex", testDAVRange},
		{"DeleteCollection", testDAVDeleteCollection},
		{"ConcurrentPuts", testDAVConcurrentPuts},
	}
	env := &DAVEnv{DB: open(t)}
	env.DAV = env.DB.DAV()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, env) })
	}
}

// DAVEnv is a DAV store over a fresh database.
type DAVEnv struct {
	DB  *sqlstore.DB
	DAV *sqlstore.DAV
	n   int
	mu  sync.Mutex
}

// NewMember creates a member with a domain of its own.
func (e *DAVEnv) NewMember(t testing.TB) int64 {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	return NewMailMember(t, e.DB, &e.n)
}

// Calendar creates a calendar collection called name.
func (e *DAVEnv) Calendar(t testing.TB, member int64, name string) davrec.Collection {
	t.Helper()
	c := davrec.Collection{MemberID: member, Kind: davrec.KindCalendar, Name: name, DisplayName: name, Components: "VEVENT,VTODO"}
	if err := e.DAV.CreateCollection(context.Background(), &c); err != nil {
		t.Fatalf("create collection %q: %v", name, err)
	}
	return c
}

// Put stores an object without preconditions.
func (e *DAVEnv) Put(t testing.TB, o davrec.Object) davrec.Object {
	t.Helper()
	if o.Data == nil {
		o.Data = []byte("BEGIN:VCALENDAR\r\nUID:" + o.UID + "\r\nEND:VCALENDAR\r\n")
	}
	if o.Component == "" {
		o.Component = "VEVENT"
	}
	if _, err := e.DAV.PutObject(context.Background(), &o, nil); err != nil {
		t.Fatalf("put %s: %v", o.Name, err)
	}
	return o
}

var davDefaults = []davrec.Collection{
	{Kind: davrec.KindCalendar, Name: "default", DisplayName: "Calendar", Components: "VEVENT,VTODO"},
	{Kind: davrec.KindAddressBook, Name: "default", DisplayName: "Contacts"},
}

func testDAVDefaults(t *testing.T, e *DAVEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	if err := e.DAV.EnsureDefaults(ctx, m, davDefaults); err != nil {
		t.Fatal(err)
	}
	cals, _ := e.DAV.Collections(ctx, m, davrec.KindCalendar)
	books, _ := e.DAV.Collections(ctx, m, davrec.KindAddressBook)
	if len(cals) != 1 || cals[0].Name != "default" || cals[0].DisplayName != "Calendar" || cals[0].Components != "VEVENT,VTODO" || len(books) != 1 {
		t.Fatalf("defaults: %+v %+v", cals, books)
	}
	// A deleted default stays deleted.
	if err := e.DAV.DeleteCollection(ctx, cals[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := e.DAV.EnsureDefaults(ctx, m, davDefaults); err != nil {
		t.Fatal(err)
	}
	if cals, _ := e.DAV.Collections(ctx, m, davrec.KindCalendar); len(cals) != 0 {
		t.Fatalf("default calendar came back: %+v", cals)
	}
	if err := e.DAV.EnsureDefaults(ctx, 1<<40, davDefaults); account.ErrorCode(err) != account.ENOTFOUND {
		t.Fatalf("defaults of a missing member: %v", err)
	}
}

func testDAVDefaultsRace(t *testing.T, e *DAVEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.DAV.EnsureDefaults(ctx, m, davDefaults)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cals, _ := e.DAV.Collections(ctx, m, davrec.KindCalendar)
	if len(cals) != 1 {
		t.Fatalf("%d default calendars", len(cals))
	}
}

func testDAVCollections(t *testing.T, e *DAVEnv) {
	ctx := context.Background()
	a, b := e.NewMember(t), e.NewMember(t)
	ca := e.Calendar(t, a, "work")
	if ca.ID == 0 || ca.Seq != 0 || ca.CreatedAt.IsZero() {
		t.Fatalf("created: %+v", ca)
	}
	dup := davrec.Collection{MemberID: a, Kind: davrec.KindCalendar, Name: "work"}
	if err := e.DAV.CreateCollection(ctx, &dup); account.ErrorCode(err) != account.ECONFLICT {
		t.Fatalf("duplicate name: %v", err)
	}
	// The same name is free for another kind and another member.
	book := davrec.Collection{MemberID: a, Kind: davrec.KindAddressBook, Name: "work"}
	if err := e.DAV.CreateCollection(ctx, &book); err != nil {
		t.Fatal(err)
	}
	e.Calendar(t, b, "work")
	if _, err := e.DAV.Collection(ctx, a, davrec.KindCalendar, "missing"); account.ErrorCode(err) != account.ENOTFOUND {
		t.Fatalf("missing collection: %v", err)
	}
	ca.DisplayName, ca.Description, ca.Color = "Work", "Meetings", "#FF0000FF"
	if err := e.DAV.UpdateCollection(ctx, ca); err != nil {
		t.Fatal(err)
	}
	got, err := e.DAV.Collection(ctx, a, davrec.KindCalendar, "work")
	if err != nil || got.DisplayName != "Work" || got.Description != "Meetings" || got.Color != "#FF0000FF" || got.Seq != 1 {
		t.Fatalf("updated: %+v %v", got, err)
	}
	list, _ := e.DAV.Collections(ctx, a, davrec.KindCalendar)
	if len(list) != 1 || list[0].ID != ca.ID {
		t.Fatalf("member a calendars: %+v", list)
	}
}

func testDAVPut(t *testing.T, e *DAVEnv) {
	ctx := context.Background()
	c := e.Calendar(t, e.NewMember(t), "cal")
	o := davrec.Object{CollectionID: c.ID, Name: "a.ics", UID: "a", Component: "VEVENT", Data: []byte("one")}
	created, err := e.DAV.PutObject(ctx, &o, nil)
	if err != nil || !created || o.ETag == "" || o.Modified.IsZero() || o.Size != 3 {
		t.Fatalf("create: %v %v %+v", created, err, o)
	}
	first := o.ETag
	// The same bytes again still get a new ETag (no ABA on If-Match).
	created, err = e.DAV.PutObject(ctx, &o, nil)
	if err != nil || created || o.ETag == first {
		t.Fatalf("replace: %v %v %q", created, err, o.ETag)
	}
	got, err := e.DAV.ObjectsByName(ctx, c.ID, []string{"a.ics", "missing.ics"})
	if err != nil || len(got) != 1 || string(got[0].Data) != "one" || got[0].ETag != o.ETag || got[0].UID != "a" {
		t.Fatalf("by name: %+v %v", got, err)
	}
	list, err := e.DAV.Objects(ctx, c.ID, false)
	if err != nil || len(list) != 1 || list[0].Data != nil || list[0].Size != 3 {
		t.Fatalf("list: %+v %v", list, err)
	}
	if c2, _ := e.DAV.Collection(ctx, c.MemberID, c.Kind, c.Name); c2.Seq != 2 {
		t.Fatalf("seq after two puts: %d", c2.Seq)
	}
	if _, err := e.DAV.PutObject(ctx, &davrec.Object{CollectionID: 1 << 40, Name: "x", Data: []byte("x")}, nil); account.ErrorCode(err) != account.ENOTFOUND {
		t.Fatalf("put into a missing collection: %v", err)
	}
}

func testDAVPreconditions(t *testing.T, e *DAVEnv) {
	ctx := context.Background()
	c := e.Calendar(t, e.NewMember(t), "cal")
	o := e.Put(t, davrec.Object{CollectionID: c.ID, Name: "a.ics", UID: "a"})
	stale := errors.New("stale")
	var seen *davrec.Object
	o2 := o
	o2.Data = []byte("changed")
	_, err := e.DAV.PutObject(ctx, &o2, func(cur *davrec.Object) error {
		seen = cur
		return stale
	})
	if !errors.Is(err, stale) || seen == nil || seen.ETag != o.ETag {
		t.Fatalf("check: %v %+v", err, seen)
	}
	got, _ := e.DAV.ObjectsByName(ctx, c.ID, []string{"a.ics"})
	if string(got[0].Data) == "changed" {
		t.Fatal("a refused put was written")
	}
	_, err = e.DAV.PutObject(ctx, &davrec.Object{CollectionID: c.ID, Name: "new.ics", Data: []byte("x")}, func(cur *davrec.Object) error {
		if cur != nil {
			return fmt.Errorf("current of a new object: %+v", cur)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DAV.DeleteObject(ctx, c.ID, "a.ics", func(*davrec.Object) error { return stale }); !errors.Is(err, stale) {
		t.Fatalf("delete check: %v", err)
	}
	if err := e.DAV.DeleteObject(ctx, c.ID, "missing.ics", nil); account.ErrorCode(err) != account.ENOTFOUND {
		t.Fatalf("delete missing: %v", err)
	}
}

func testDAVUIDConflict(t *testing.T, e *DAVEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	c, other := e.Calendar(t, m, "cal"), e.Calendar(t, m, "other")
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "a.ics", UID: "same"})
	_, err := e.DAV.PutObject(ctx, &davrec.Object{CollectionID: c.ID, Name: "b.ics", UID: "same", Data: []byte("x")}, nil)
	var conflict *davrec.UIDConflictError
	if !errors.As(err, &conflict) || conflict.Name != "a.ics" {
		t.Fatalf("uid conflict: %v", err)
	}
	// Replacing the object itself, another collection, and empty UIDs are fine.
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "a.ics", UID: "same"})
	e.Put(t, davrec.Object{CollectionID: other.ID, Name: "b.ics", UID: "same"})
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "x.ics", Data: []byte("x")})
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "y.ics", Data: []byte("y")})
}

func testDAVChanges(t *testing.T, e *DAVEnv) {
	ctx := context.Background()
	c := e.Calendar(t, e.NewMember(t), "cal")
	_, seq0, err := e.DAV.Changes(ctx, c.ID, 0)
	if err != nil || seq0 != 0 {
		t.Fatalf("empty: %d %v", seq0, err)
	}
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "a.ics", UID: "a"})
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "b.ics", UID: "b"})
	_, token, _ := e.DAV.Changes(ctx, c.ID, 0)
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "a.ics", UID: "a"})
	if err := e.DAV.DeleteObject(ctx, c.ID, "b.ics", nil); err != nil {
		t.Fatal(err)
	}
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "c.ics", UID: "c"})
	ch, seq, err := e.DAV.Changes(ctx, c.ID, token)
	if err != nil || seq != token+3 {
		t.Fatalf("changes: %d %v", seq, err)
	}
	var got []string
	for _, x := range ch {
		got = append(got, fmt.Sprintf("%s:%v", x.Name, x.Deleted))
	}
	if !slices.Equal(got, []string{"a.ics:false", "b.ics:true", "c.ics:false"}) {
		t.Fatalf("changes since %d: %v", token, got)
	}
	all, _, _ := e.DAV.Changes(ctx, c.ID, 0)
	if len(all) != 3 {
		t.Fatalf("full log (latest per name): %+v", all)
	}
	if ch, _, _ := e.DAV.Changes(ctx, c.ID, seq); len(ch) != 0 {
		t.Fatalf("changes after the current seq: %+v", ch)
	}
	// A re-created object is no longer a tombstone.
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "b.ics", UID: "b"})
	ch, _, _ = e.DAV.Changes(ctx, c.ID, seq)
	if len(ch) != 1 || ch[0].Name != "b.ics" || ch[0].Deleted {
		t.Fatalf("re-created: %+v", ch)
	}
	if _, _, err := e.DAV.Changes(ctx, 1<<40, 0); account.ErrorCode(err) != account.ENOTFOUND {
		t.Fatalf("changes of a missing collection: %v", err)
	}
}

func testDAVRange(t *testing.T, e *DAVEnv) {
	ctx := context.Background()
	c := e.Calendar(t, e.NewMember(t), "cal")
	day := func(d int) time.Time { return time.Date(2030, 1, d, 0, 0, 0, 0, time.UTC) }
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "jan2.ics", UID: "1", Start: day(2), End: day(3)})
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "jan10.ics", UID: "2", Start: day(10), End: day(11)})
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "series.ics", UID: "3", Start: day(5)})               // open end
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "instant.ics", UID: "4", Start: day(4), End: day(4)}) // zero length
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "todo.ics", UID: "5", Component: "VTODO"})
	names := func(start, end time.Time, comp string) []string {
		list, err := e.DAV.ObjectsInRange(ctx, c.ID, comp, start, end)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range list {
			if o.Data == nil {
				t.Fatalf("%s without data", o.Name)
			}
			out = append(out, o.Name)
		}
		return out
	}
	for _, tc := range []struct {
		start, end time.Time
		comp       string
		want       []string
	}{
		{day(1), day(3), "VEVENT", []string{"jan2.ics"}},
		{day(4), day(5), "VEVENT", []string{"instant.ics"}},
		{day(6), day(7), "VEVENT", []string{"series.ics"}},
		{day(1), time.Time{}, "VEVENT", []string{"instant.ics", "jan10.ics", "jan2.ics", "series.ics"}},
		{time.Time{}, day(3), "VEVENT", []string{"jan2.ics"}},
		{day(20), day(21), "VTODO", []string{"todo.ics"}},
	} {
		if got := names(tc.start, tc.end, tc.comp); !slices.Equal(got, tc.want) {
			t.Errorf("%s %v..%v: %v, want %v", tc.comp, tc.start, tc.end, got, tc.want)
		}
	}
}

func testDAVDeleteCollection(t *testing.T, e *DAVEnv) {
	ctx := context.Background()
	m := e.NewMember(t)
	c := e.Calendar(t, m, "cal")
	e.Put(t, davrec.Object{CollectionID: c.ID, Name: "a.ics", UID: "a"})
	if err := e.DAV.DeleteCollection(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.DAV.DeleteCollection(ctx, c.ID); account.ErrorCode(err) != account.ENOTFOUND {
		t.Fatalf("second delete: %v", err)
	}
	again := e.Calendar(t, m, "cal")
	if again.ID == c.ID {
		t.Fatal("re-created collection reuses the ID (old sync tokens would look valid)")
	}
	if list, _ := e.DAV.Objects(ctx, again.ID, true); len(list) != 0 {
		t.Fatalf("objects survived: %+v", list)
	}
}

func testDAVConcurrentPuts(t *testing.T, e *DAVEnv) {
	ctx := context.Background()
	c := e.Calendar(t, e.NewMember(t), "cal")
	base := e.Put(t, davrec.Object{CollectionID: c.ID, Name: "a.ics", UID: "a"})
	// Ten writers that all read the same ETag: exactly one If-Match wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := davrec.Object{CollectionID: c.ID, Name: "a.ics", UID: "a", Component: "VEVENT", Data: fmt.Appendf(nil, "v%d", i)}
			_, err := e.DAV.PutObject(ctx, &o, func(cur *davrec.Object) error {
				if cur == nil || cur.ETag != base.ETag {
					return errors.New("stale")
				}
				return nil
			})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d conditional writers won, want 1", wins)
	}
}
