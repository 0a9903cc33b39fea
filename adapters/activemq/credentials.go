package activemq

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sitectl/sitectl/inventory"
)

// Credentials log sitectl into the brokers (STOMP CONNECT login/passcode).
// They come from the environment or a file named by the inventory, never
// from flags. String and GoString never print the password.
type Credentials struct {
	Username string
	Password string
}

// IsZero reports whether no credentials are set (anonymous CONNECT).
func (c Credentials) IsZero() bool { return c.Username == "" && c.Password == "" }

func (c Credentials) String() string {
	if c.IsZero() {
		return "anonymous"
	}
	return "user " + c.Username + " (password hidden)"
}

// GoString keeps %#v from printing the password.
func (c Credentials) GoString() string { return "activemq.Credentials{" + c.String() + "}" }

// LoadCredentials reads the credentials the inventory points at. A nil c
// means anonymous. getenv is os.Getenv outside tests. A file holds
// "username:password" on one line, or YAML with username and password keys.
// Errors name the variable or file, never a value read from them.
func LoadCredentials(c *inventory.Credentials, getenv func(string) string) (Credentials, error) {
	if c == nil {
		return Credentials{}, nil
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if c.File != "" {
		data, err := os.ReadFile(c.File)
		if err != nil {
			return Credentials{}, fmt.Errorf("activemq credentials file: %w", err)
		}
		cr, err := parseCredentialsFile(data)
		if err != nil {
			return Credentials{}, fmt.Errorf("activemq credentials file %s: %w", c.File, err)
		}
		return cr, nil
	}
	var cr Credentials
	if c.UsernameEnv != "" {
		if cr.Username = getenv(c.UsernameEnv); cr.Username == "" {
			return Credentials{}, fmt.Errorf("activemq credentials: environment variable %s (username_env) is empty or unset", c.UsernameEnv)
		}
	}
	if c.PasswordEnv != "" {
		if cr.Password = getenv(c.PasswordEnv); cr.Password == "" {
			return Credentials{}, fmt.Errorf("activemq credentials: environment variable %s (password_env) is empty or unset", c.PasswordEnv)
		}
	}
	return cr, nil
}

func parseCredentialsFile(data []byte) (Credentials, error) {
	var y struct {
		Username *string `yaml:"username"`
		Password *string `yaml:"password"`
	}
	if err := yaml.Unmarshal(data, &y); err == nil && (y.Username != nil || y.Password != nil) {
		if y.Username == nil || y.Password == nil || *y.Username == "" {
			return Credentials{}, fmt.Errorf("YAML form needs both username and password")
		}
		return Credentials{Username: *y.Username, Password: *y.Password}, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, pass, ok := strings.Cut(line, ":")
		user, pass = strings.TrimSpace(user), strings.TrimSpace(pass)
		if !ok || user == "" {
			// do not quote the line: it may hold the password
			return Credentials{}, fmt.Errorf("expected username:password on one line")
		}
		return Credentials{Username: user, Password: pass}, nil
	}
	return Credentials{}, fmt.Errorf("no username:password line")
}
