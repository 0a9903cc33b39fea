package inventory

import "testing"

// FuzzParseCredentialsFile: never panics; a success has both parts
// non-empty; an error never quotes the file (it may hold the password).
func FuzzParseCredentialsFile(f *testing.F) {
	f.Add([]byte("admin:s3cret\n"))
	f.Add([]byte("username: admin\npassword: s3cret\n"))
	f.Add([]byte("# comment\n\nonly-a-password-s3cret\n"))
	f.Add([]byte("username: admin\n"))
	f.Add([]byte("\t:\x00"))
	fixed := map[string]bool{}
	for _, b := range []string{"username: a\n", "a\n", ""} {
		if _, _, err := ParseCredentialsFile([]byte(b)); err != nil {
			fixed[err.Error()] = true
		}
	}
	if len(fixed) != 3 {
		f.Fatalf("want 3 distinct fixed errors, got %v", fixed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		user, pass, err := ParseCredentialsFile(b)
		if err == nil {
			if user == "" || pass == "" {
				t.Fatalf("success with user %q, password %q", user, pass)
			}
			return
		}
		// every error is one of the fixed messages: none quotes the file
		if msg := err.Error(); !fixed[msg] {
			t.Fatalf("an error that is not one of the fixed messages (it may quote the file): %s", msg)
		}
	})
}
