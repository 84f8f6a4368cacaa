package account

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
)

// ImportRow is one member to create: a line of an import file, or the
// administrator's form.
type ImportRow struct {
	Line     int // in the file, for the report; 0 for a form
	Email    string
	Name     string
	Password string // "": a one-time password is generated
}

// ImportResult says what became of a row.
type ImportResult struct {
	Line  int
	Email string // as stored when valid, as given otherwise
	// OneTimePassword was generated for the row (Password was empty): shown
	// to the administrator this once, to hand over. The member must change
	// it at the first sign-in. Empty in a dry run.
	OneTimePassword string
	Member          Member // the created member; zero in a dry run and on error
	Err             error  // nil: created, or would be in a dry run
}

// ImportReport is the outcome of ImportMembers, row by row in file order.
type ImportReport struct {
	DryRun bool
	Rows   []ImportResult
	OK     int // rows created (would be, in a dry run)
	Failed int
}

// MaxImportRows bounds one import: the rows, their report and the
// passwords are held in memory.
const MaxImportRows = 100_000

// importBatch is how many members one transaction creates: a commit per
// member (an fsync each on SQLite) would make the import of ten thousand
// take minutes, one transaction for all would hold the write lock that
// long.
const importBatch = 500

// ReadMembersCSV reads an import file: a header line naming the columns
// (email, and optionally name and password, in any order; no others), then
// a member per line. A syntax error of the file as a whole is an error;
// what is wrong with a row is left to ImportMembers, which reports it.
func ReadMembersCSV(r io.Reader) ([]ImportRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, Errorf(EINVALID, "The file is empty: its first line must name the columns, such as email,name,password.")
	} else if err != nil {
		return nil, Errorf(EINVALID, "The file is not valid CSV: %v.", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch h {
		case "email", "name", "password":
		default:
			return nil, Errorf(EINVALID, "Unknown column %q in the first line: the columns are email, name and password.", clip(h))
		}
		if _, dup := col[h]; dup {
			return nil, Errorf(EINVALID, "The column %s appears twice in the first line.", h)
		}
		col[h] = i
	}
	if _, ok := col["email"]; !ok {
		return nil, Errorf(EINVALID, "The first line must name the columns and include email, such as email,name,password.")
	}
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	var rows []ImportRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, Errorf(EINVALID, "The file is not valid CSV: %v.", err)
		}
		if len(rows) == MaxImportRows {
			return nil, Errorf(ELIMIT, "The file has more than %d members: split it.", MaxImportRows)
		}
		line, _ := cr.FieldPos(0)
		rows = append(rows, ImportRow{Line: line, Email: field(rec, "email"), Name: field(rec, "name"), Password: field(rec, "password")})
	}
	return rows, nil
}

// ImportMembers creates the members of rows in the domains sc covers. Every
// row is checked first: its address, its domain (one outside the scope is
// reported as missing, as to a lookup), its name and password, an address
// repeated in the file or held by a member or an alias. With dryRun that is
// all: the report says what would happen and nothing changes. Otherwise
// the valid rows are created, in batches of one transaction each; the rows
// in error are reported and skipped. A row without a password gets a
// one-time password, returned in the report.
//
// Passwords given in the file are hashed as any main password, in
// parallel up to the Hasher's bound; generated ones are hashed with
// HashGenerated, so ten thousand members take seconds, not hours.
func (s *Service) ImportMembers(ctx context.Context, sc AdminAccess, rows []ImportRow, dryRun bool, by Actor) (ImportReport, error) {
	if len(rows) > MaxImportRows {
		return ImportReport{}, Errorf(ELIMIT, "More than %d members: split the import.", MaxImportRows)
	}
	rep := ImportReport{DryRun: dryRun, Rows: make([]ImportResult, len(rows))}
	members := make([]Member, len(rows))
	domains := map[string]*Domain{} // nil: missing or out of scope
	seen := map[string]int{}
	var emails []string
	for i, row := range rows {
		res := &rep.Rows[i]
		res.Line, res.Email = row.Line, strings.TrimSpace(row.Email)
		e, err := ParseEmail(row.Email)
		if err != nil {
			res.Err = err
			continue
		}
		res.Email = e
		dn := domainOf(e)
		d, ok := domains[dn]
		if !ok {
			if dd, err := s.AdminDomain(ctx, sc, dn); err == nil {
				d = &dd
			} else if ErrorCode(err) != ENOTFOUND {
				return ImportReport{}, err
			}
			domains[dn] = d
		}
		if d == nil {
			res.Err = errNoDomainNamed(dn)
			continue
		}
		name, err := checkName(e, row.Name)
		if err != nil {
			res.Err = err
			continue
		}
		if row.Password != "" {
			if err := CheckPassword(e, row.Password); err != nil {
				res.Err = err
				continue
			}
		}
		if first, dup := seen[e]; dup {
			res.Err = Errorf(ECONFLICT, "The address is also on line %d.", rows[first].Line)
			continue
		}
		seen[e] = i
		emails = append(emails, e)
		members[i] = Member{DomainID: d.ID, Email: e, Name: name, State: StateActive, DomainCreatedAt: d.CreatedAt}
	}
	taken, err := s.store.TakenAddresses(ctx, emails)
	if err != nil {
		return ImportReport{}, err
	}
	for i := range rep.Rows {
		if rep.Rows[i].Err != nil {
			continue
		}
		switch taken[rep.Rows[i].Email] {
		case TakenByMember:
			rep.Rows[i].Err = Errorf(ECONFLICT, "A member %s already exists.", rep.Rows[i].Email)
		case TakenByAlias:
			rep.Rows[i].Err = Errorf(ECONFLICT, "%s is the address of an alias.", rep.Rows[i].Email)
		}
	}
	if !dryRun {
		if err := s.importHash(ctx, rows, members, &rep); err != nil {
			return ImportReport{}, err
		}
		s.importCreate(ctx, members, &rep, by)
	}
	for _, r := range rep.Rows {
		if r.Err == nil {
			rep.OK++
		} else {
			rep.Failed++
		}
	}
	if !dryRun {
		s.Log.Info("members imported", "created", rep.OK, "failed", rep.Failed, "via", by.Via, "ip", by.IP)
	}
	return rep, nil
}

// importHash sets the password hash of every valid row, generating the
// one-time passwords.
func (s *Service) importHash(ctx context.Context, rows []ImportRow, members []Member, rep *ImportReport) error {
	now := s.Now().UTC()
	var given []int
	for i := range rows {
		if rep.Rows[i].Err != nil {
			continue
		}
		members[i].CreatedAt = now
		if rows[i].Password == "" {
			pw := GeneratePassword()
			rep.Rows[i].OneTimePassword = pw
			members[i].PasswordHash, members[i].MustChangePassword = s.Hasher.HashGenerated(pw), true
		} else {
			given = append(given, i)
		}
	}
	// The Hasher bounds how many hashes run at once; more workers than
	// CPUs would only queue there.
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(given), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				h, err := s.Hasher.Hash(ctx, rows[i].Password)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				members[i].PasswordHash = h
			}
		}()
	}
	for _, i := range given {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("hash imported passwords: %w", err)
	default:
		return nil
	}
}

// importCreate inserts the valid rows in batches. A batch that fails (the
// database went away) fails its rows, which the report shows, and the
// others go on.
func (s *Service) importCreate(ctx context.Context, members []Member, rep *ImportReport, by Actor) {
	audit := func(m Member) Effects {
		return Effects{Audit: []AuditEntry{s.Audit(AuditMemberAdded, m, by, "")}}
	}
	var batch []*Member
	var idx []int
	flush := func() {
		if len(batch) == 0 {
			return
		}
		errs, err := s.store.CreateMembers(ctx, batch, audit)
		for j, i := range idx {
			switch {
			case err != nil:
				rep.Rows[i].Err, rep.Rows[i].OneTimePassword = unavailableErr(err), ""
			case errs[j] != nil:
				rep.Rows[i].Err, rep.Rows[i].OneTimePassword = errs[j], ""
			default:
				rep.Rows[i].Member = *batch[j]
			}
		}
		if err != nil {
			s.Log.Error("import batch failed", "rows", len(batch), "err", err)
		}
		batch, idx = batch[:0], idx[:0]
	}
	for i := range members {
		if rep.Rows[i].Err != nil {
			continue
		}
		batch, idx = append(batch, &members[i]), append(idx, i)
		if len(batch) == importBatch {
			flush()
		}
	}
	flush()
}

// AddMemberOneTime creates a member of a domain sc covers with a one-time
// main password, which it returns: the administrator hands it over, and the
// member chooses their own at the first sign-in.
func (s *Service) AddMemberOneTime(ctx context.Context, sc AdminAccess, email, name string, by Actor) (Member, string, error) {
	rep, err := s.ImportMembers(ctx, sc, []ImportRow{{Email: email, Name: name}}, false, by)
	if err != nil {
		return Member{}, "", err
	}
	r := rep.Rows[0]
	if r.Err != nil {
		return Member{}, "", r.Err
	}
	return r.Member, r.OneTimePassword, nil
}
