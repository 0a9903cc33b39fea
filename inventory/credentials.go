package inventory

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// ReadCredentials returns the user name and password c points at: two
// environment variables (read with getenv; os.Getenv when nil), or a file
// holding "username:password" on its first line that is neither blank nor a
// "#" comment, or a YAML mapping {username, password} (quoted or not).
// MongoDB, ActiveMQ and the redactor all read credentials through it, so
// what is masked is exactly what is used. Errors name the variable or file,
// never a value read from them.
func ReadCredentials(c *Credentials, getenv func(string) string) (user, password string, err error) {
	if c == nil {
		return "", "", nil
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if c.File != "" {
		b, err := os.ReadFile(c.File)
		if err != nil {
			return "", "", fmt.Errorf("credentials file: %w", err)
		}
		user, password, err := ParseCredentialsFile(b)
		if err != nil {
			return "", "", fmt.Errorf("credentials file %s: %w", c.File, err)
		}
		return user, password, nil
	}
	if c.UsernameEnv == "" || c.PasswordEnv == "" {
		return "", "", errors.New("credentials: set username_env and password_env, or file")
	}
	if user = getenv(c.UsernameEnv); user == "" {
		return "", "", fmt.Errorf("credentials: environment variable %s (username_env, the user name) is empty or unset", c.UsernameEnv)
	}
	if password = getenv(c.PasswordEnv); password == "" {
		return "", "", fmt.Errorf("credentials: environment variable %s (password_env, the password) is empty or unset", c.PasswordEnv)
	}
	return user, password, nil
}

// ParseCredentialsFile parses a credentials file's content (see
// ReadCredentials). Both the user name and the password must be non-empty.
func ParseCredentialsFile(b []byte) (user, password string, err error) {
	var y struct {
		Username *string `yaml:"username"`
		Password *string `yaml:"password"`
	}
	if yerr := yaml.Unmarshal(b, &y); yerr == nil && (y.Username != nil || y.Password != nil) {
		if y.Username == nil || y.Password == nil || *y.Username == "" || *y.Password == "" {
			return "", "", errors.New("the YAML form needs both username and password, non-empty")
		}
		return *y.Username, *y.Password, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, pass, ok := strings.Cut(line, ":")
		user, pass = strings.TrimSpace(user), strings.TrimSpace(pass)
		if !ok || user == "" || pass == "" {
			// do not quote the line: it may hold the password
			return "", "", errors.New(`expected "username:password" on one line, or a YAML mapping with username and password`)
		}
		return user, pass, nil
	}
	return "", "", errors.New(`empty: expected "username:password" on one line, or a YAML mapping with username and password`)
}
