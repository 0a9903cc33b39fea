package activemq

import (
	"fmt"

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

// LoadCredentials reads the credentials the inventory points at, through
// inventory.ReadCredentials (the parser the redactor uses too). A nil c
// means anonymous. getenv is os.Getenv outside tests. Errors name the
// variable or file, never a value read from them.
func LoadCredentials(c *inventory.Credentials, getenv func(string) string) (Credentials, error) {
	user, pass, err := inventory.ReadCredentials(c, getenv)
	if err != nil {
		return Credentials{}, fmt.Errorf("activemq %w", err)
	}
	return Credentials{Username: user, Password: pass}, nil
}
