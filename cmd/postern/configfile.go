package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// The configuration file holds the configuration flags (those registered
// with configVar, which may also come from the environment), written as
// TOML key = value lines named like the flags: web-addr = ":80". A flag wins
// over its variable, which wins over the file, which wins over the default.
// The file is --config FILE (or POSTERN_CONFIG), else DATA/postern.toml when
// it exists: the data folder the flags or the environment name, so the
// service, its unit and every CLI command that already name the folder find
// the file without being told.

// configFileName is the file looked for in the data folder.
const configFileName = "postern.toml"

// configEnv names the file, as --config does.
const configEnv = envPrefix + "CONFIG"

// configKeys returns every name the file accepts: the configuration flags
// of every command, so that one file serves serve and the CLI alike (a
// listener address in it is not an error for "user list"). ops holds every
// other flag name, the per-command operands, to say why one is refused.
func configKeys() (keys, ops map[string]bool) {
	keys, ops = map[string]bool{}, map[string]bool{}
	for _, c := range commands {
		fs := newFlagSet(c)
		a := &app{}
		a.registerGlobals(fs)
		c.setup(a, fs)
		for n := range a.envOK {
			keys[n] = true
		}
		fs.VisitAll(func(f *flag.Flag) {
			if !a.envOK[f.Name] {
				ops[f.Name] = true
			}
		})
	}
	return keys, ops
}

// configFile is a file's settings, by flag name, as the flags take them.
type configFile struct {
	path   string
	values map[string]string
	lines  map[string]int // the line of each key, for messages
}

// readConfigFile reads and checks path: every key must be a configuration
// flag, every value a string, a number, a boolean (for a boolean flag) or a
// date.
func readConfigFile(path string) (*configFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if _, err := toml.Decode(string(b), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s line %d: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	cf := &configFile{path: path, values: map[string]string{}, lines: keyLines(string(b))}
	keys, ops := configKeys()
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	// The first mistake in the file's order, so that fixing them one by
	// one goes down the file.
	sort.Slice(names, func(i, j int) bool {
		li, lj := cf.lines[names[i]], cf.lines[names[j]]
		if li != lj {
			return li < lj
		}
		return names[i] < names[j]
	})
	bools := boolFlags()
	for _, k := range names {
		switch {
		case k == "config":
			return nil, cf.errorf(k, "config: a file cannot name another; give --config or %s", configEnv)
		case ops[k] && !keys[k]:
			return nil, cf.errorf(k, "%s is an option of a command, not a setting: give --%s on the command line", k, k)
		case !keys[k]:
			return nil, cf.errorf(k, "unknown setting %q: the file takes the flags that have a POSTERN_ variable, written without the dashes in front (postern serve --help lists them)", k)
		}
		v, err := configValue(raw[k], bools[k])
		if err != nil {
			return nil, cf.errorf(k, "%s: %v", k, err)
		}
		cf.values[k] = v
	}
	return cf, nil
}

// where is the file and the key's line, for a message.
func (cf *configFile) where(key string) string {
	if l := cf.lines[key]; l > 0 {
		return cf.path + " line " + strconv.Itoa(l)
	}
	return cf.path
}

func (cf *configFile) errorf(key, format string, args ...any) error {
	return fmt.Errorf("%s: %s", cf.where(key), fmt.Sprintf(format, args...))
}

// configValue writes a TOML value as the flag takes it on the command line.
func configValue(v any, isBool bool) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		if !isBool {
			return "", errors.New("not a yes-or-no flag: write the value as the flag takes it, in quotes")
		}
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		if v != math.Trunc(v) || math.IsInf(v, 0) {
			return "", errors.New("not a whole number: write the value as the flag takes it, in quotes")
		}
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case time.Time:
		// A bare date (cutoff = 2026-04-01) is a date as the flag takes it;
		// the decoder marks it with a zone of that name.
		if v.Location().String() == "date-local" {
			return v.Format(dateLayout), nil
		}
		return "", errors.New("a date and time: write the value as the flag takes it, in quotes")
	case map[string]any:
		return "", errors.New("a table: the file holds only key = value lines, one for each flag")
	case []any, []map[string]any:
		return "", errors.New("a list: write one string as the flag takes it, such as \"10.0.0.1,10.0.0.2\"")
	}
	return "", fmt.Errorf("a value of type %T: write it as the flag takes it, in quotes", v)
}

// keyLines finds the line of each top-level key in a TOML text, for the
// messages: a table's header line for a table. Lines inside multi-line
// strings are skipped. A key it cannot find gets no line in the message.
func keyLines(text string) map[string]int {
	lines := map[string]int{}
	inMulti := ""
	for i, line := range strings.Split(text, "\n") {
		s := strings.TrimSpace(line)
		if inMulti != "" {
			if strings.Count(s, inMulti)%2 == 1 {
				inMulti = ""
			}
			continue
		}
		var key string
		switch {
		case s == "" || s[0] == '#':
			continue
		case s[0] == '[':
			key = strings.TrimSpace(strings.Trim(s[:strings.IndexByte(s+"]", ']')], "[]"))
		default:
			k, rest, ok := strings.Cut(s, "=")
			if !ok {
				continue
			}
			key = strings.TrimSpace(k)
			for _, q := range []string{`"""`, `'''`} {
				if strings.Count(rest, q)%2 == 1 {
					inMulti = q
				}
			}
		}
		if dot := strings.IndexByte(key, '.'); dot > 0 && key[0] != '"' && key[0] != '\'' {
			key = strings.TrimSpace(key[:dot]) // a.b = 1 defines the table a
		}
		key = strings.Trim(key, `"'`)
		if _, seen := lines[key]; !seen {
			lines[key] = i + 1
		}
	}
	return lines
}

// loadConfigFile finds the file for this run: --config or POSTERN_CONFIG
// (which must exist), else DATA/postern.toml if it exists. It returns nil
// when there is none.
func (a *app) loadConfigFile(getenv func(string) (string, bool)) (*configFile, error) {
	path, named := a.configPath, a.configPath != ""
	if !named {
		if v, ok := getenv(configEnv); ok && v != "" {
			path, named = v, true
		}
	}
	if !named {
		path = filepath.Join(a.data, configFileName)
	}
	cf, err := readConfigFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if named {
			return nil, fmt.Errorf("the configuration file %s does not exist", path)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if d, ok := cf.values["data"]; ok && !named && !sameDir(d, a.data) {
		// Found in one folder, it would move the data to another: the
		// next command would not find this file there.
		return nil, cf.errorf("data", "data = %q, but the file is in the data folder %s: remove the line, or name the file with --config", d, a.data)
	}
	return cf, nil
}

// sameDir tells whether two paths name one folder, written alike or not.
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
