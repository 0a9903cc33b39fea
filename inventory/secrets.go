package inventory

import (
	"fmt"
	"os"
)

// Secrets returns the credential values the inventory points at (env vars
// and files), so they can be masked in every output. They are read with
// ReadCredentials, the parser MongoDB and ActiveMQ use, so a
// YAML-quoted password is masked as it is used. A password environment
// variable is masked even when the rest of the credentials cannot be read.
func (inv *Inventory) Secrets(getenv func(string) string) []string {
	var creds []*Credentials
	if inv.MongoDB != nil {
		creds = append(creds, inv.MongoDB.Credentials)
	}
	if inv.ActiveMQ != nil {
		creds = append(creds, inv.ActiveMQ.Credentials)
	}
	if inv.Notify != nil {
		for _, t := range inv.Notify.Targets {
			if t != nil {
				creds = append(creds, t.Header) // the header's value, and the URL below
			}
		}
	}
	var out []string
	if inv.Notify != nil {
		for _, t := range inv.Notify.Targets {
			if t == nil {
				continue
			}
			if u, err := t.Endpoint(getenv); err == nil && u != "" {
				out = append(out, u) // a webhook URL is a credential (Slack, Teams)
			}
		}
	}
	for _, c := range creds {
		if c == nil {
			continue
		}
		if c.PasswordEnv != "" {
			out = append(out, getenv(c.PasswordEnv))
		}
		if _, pass, err := ReadCredentials(c, getenv); err == nil && pass != "" {
			out = append(out, pass)
		}
	}
	return out
}

// CredentialFileWarnings names every credentials file that others than its
// owner may read or write (like ssh with a private key, but a warning).
func (inv *Inventory) CredentialFileWarnings() []string {
	var out []string
	for _, c := range []struct {
		layer string
		c     *Credentials
	}{{"mongodb", credsOf(inv.MongoDB != nil, func() *Credentials { return inv.MongoDB.Credentials })},
		{"activemq", credsOf(inv.ActiveMQ != nil, func() *Credentials { return inv.ActiveMQ.Credentials })}} {
		if c.c == nil || c.c.File == "" {
			continue
		}
		st, err := os.Stat(c.c.File)
		if err != nil {
			continue // reading it fails later, naming the file
		}
		if m := st.Mode().Perm(); m&0o077 != 0 {
			out = append(out, fmt.Sprintf("%s credentials file %s is readable by others than its owner (mode %04o): chmod 600 %s", c.layer, c.c.File, m, c.c.File))
		}
	}
	return out
}

func credsOf(ok bool, get func() *Credentials) *Credentials {
	if !ok {
		return nil
	}
	return get()
}
