// Package mongo observes and drives a MongoDB replica set spread over the
// two sites (typically PSA: primary, secondary, arbiter at a witness).
//
// Observe connects to every member directly (directConnection=true), in
// parallel, and reports what each member says about itself and about the
// others. Nothing it does changes the set. The actions (WaitPrimary,
// MovePrimary, ForcePromote) do change it and verify the outcome; every one
// of them has a deadline and returns an *ActionError that says what was
// expected, what was observed and where.
//
// Credentials come from environment variables or a file named in the
// inventory, never from flags, and never appear in errors or strings.
package mongo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sitectl/sitectl/inventory"
)

// Member is one replica-set member as the inventory names it.
type Member struct {
	Name    string `json:"name"`
	Address string `json:"address"` // host:port
	Site    string `json:"site"`    // site or witness name
	Arbiter bool   `json:"arbiter,omitempty"`
}

// MembersFrom lists the inventory's members in order.
func MembersFrom(m *inventory.MongoDB) []Member {
	if m == nil {
		return nil
	}
	out := make([]Member, 0, len(m.Members))
	for _, mm := range m.Members {
		if mm != nil {
			out = append(out, Member{Name: mm.Name, Address: mm.Address, Site: mm.Site, Arbiter: mm.Arbiter})
		}
	}
	return out
}

// Secret is a string that never prints.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string                  { return redacted }
func (Secret) GoString() string                { return `"` + redacted + `"` }
func (Secret) MarshalJSON() ([]byte, error)    { return json.Marshal(redacted) }
func (Secret) MarshalText() ([]byte, error)    { return []byte(redacted), nil }
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

// Credentials log in to the admin database with SCRAM. The zero value
// means no authentication.
type Credentials struct {
	Username string
	Password Secret
}

// IsZero reports that no credentials are configured.
func (c Credentials) IsZero() bool { return c.Username == "" && c.Password == "" }

func (c Credentials) String() string {
	if c.IsZero() {
		return "no credentials"
	}
	return fmt.Sprintf("user %q (password redacted)", c.Username)
}

// GoString keeps %#v from printing the password.
func (c Credentials) GoString() string {
	return fmt.Sprintf("mongo.Credentials{Username:%q, Password:%q}", c.Username, redacted)
}

// redact removes the password from s (defence in depth: the driver does not
// put it in its messages, and sitectl never builds URIs with it).
func (c Credentials) redact(s string) string {
	if len(c.Password) >= 3 {
		s = strings.ReplaceAll(s, string(c.Password), redacted)
	}
	return s
}

// LoadCredentials reads the credentials the inventory points at: two
// environment variables, or a file holding "username:password" on one line
// or a YAML mapping {username, password}. nil means no authentication.
// Errors name the variable or file, never its content.
func LoadCredentials(c *inventory.Credentials) (Credentials, error) {
	if c == nil {
		return Credentials{}, nil
	}
	if c.File != "" {
		b, err := os.ReadFile(c.File)
		if err != nil {
			return Credentials{}, fmt.Errorf("mongodb credentials file: %w", err)
		}
		return parseCredentialsFile(c.File, b)
	}
	if c.UsernameEnv == "" || c.PasswordEnv == "" {
		return Credentials{}, errors.New("mongodb credentials: set username_env and password_env, or file")
	}
	user, ok := os.LookupEnv(c.UsernameEnv)
	if !ok || user == "" {
		return Credentials{}, fmt.Errorf("mongodb credentials: environment variable %s (the user name) is not set", c.UsernameEnv)
	}
	pass, ok := os.LookupEnv(c.PasswordEnv)
	if !ok || pass == "" {
		return Credentials{}, fmt.Errorf("mongodb credentials: environment variable %s (the password) is not set", c.PasswordEnv)
	}
	return Credentials{Username: user, Password: Secret(pass)}, nil
}

func parseCredentialsFile(name string, b []byte) (Credentials, error) {
	bad := fmt.Errorf("mongodb credentials file %s: expected \"username:password\" on one line, or a YAML mapping with username and password", name)
	text := strings.TrimSpace(string(b))
	if text == "" {
		return Credentials{}, bad
	}
	var y struct {
		Username string `yaml:"username"`
		Password string `yaml:"password"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&y); err == nil && (y.Username != "" || y.Password != "") {
		if y.Username == "" || y.Password == "" {
			return Credentials{}, bad
		}
		return Credentials{Username: y.Username, Password: Secret(y.Password)}, nil
	}
	line, _, _ := strings.Cut(text, "\n")
	user, pass, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
	if !ok || user == "" || pass == "" {
		return Credentials{}, bad
	}
	return Credentials{Username: user, Password: Secret(pass)}, nil
}
