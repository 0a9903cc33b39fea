package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A credentials file others may read is named, with the chmod that fixes it.
func TestWarnsOnACredentialsFileOthersCanRead(t *testing.T) {
	f := filepath.Join(t.TempDir(), "amq.cred")
	if err := os.WriteFile(f, []byte("u:p4ssw0rd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	inv := &Inventory{ActiveMQ: &ActiveMQ{Credentials: &Credentials{File: f}}}
	w := inv.CredentialFileWarnings()
	if len(w) != 1 || !strings.Contains(w[0], "activemq credentials file "+f+" is readable by others than its owner (mode 0644): chmod 600 "+f) {
		t.Errorf("warnings %q", w)
	}
	_ = os.Chmod(f, 0o600)
	if w := inv.CredentialFileWarnings(); len(w) != 0 {
		t.Errorf("a 0600 file warned: %q", w)
	}
}
