package mysql

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseDSN checks DSNs: an error that does not repeat a mysql:// URL's password, or a
// config with the URL's credentials.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"mysql://root:pw@127.0.0.1:3306/test", "mysql://u:p%40ss@h/db?timeout=5s", "mysql://h", "mysql://u:secret@h/db?timeout=x",
		"root:pw@tcp(127.0.0.1:3306)/test?parseTime=true", "mysql://u:secret@h:99999999/db", "mysql://u:secret@[::1/db", "u:p@/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := parseDSN(s)
		u, uerr := url.Parse(s)
		isURL := strings.HasPrefix(s, "mysql://")
		if err != nil {
			if isURL && uerr == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && len(pw) >= 4 && strings.Contains(err.Error(), pw) {
					t.Fatalf("%q: the error repeats the password: %v", s, err)
				}
			}
			return
		}
		if isURL && u.User != nil {
			pw, _ := u.User.Password()
			if cfg.User != u.User.Username() || cfg.Passwd != pw {
				t.Fatalf("%q: user %q password %q", s, cfg.User, cfg.Passwd)
			}
		}
	})
}
