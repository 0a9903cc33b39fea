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
	"encoding/json"
	"fmt"
	"os"
	"strings"

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

// LoadCredentials reads the credentials the inventory points at through
// inventory.ReadCredentials (the parser the redactor uses too): two
// environment variables, or a file holding "username:password" on one line
// or a YAML mapping {username, password}. nil means no authentication.
// Errors name the variable or file, never its content.
func LoadCredentials(c *inventory.Credentials) (Credentials, error) {
	user, pass, err := inventory.ReadCredentials(c, os.Getenv)
	if err != nil {
		return Credentials{}, fmt.Errorf("mongodb %w", err)
	}
	return Credentials{Username: user, Password: Secret(pass)}, nil
}
