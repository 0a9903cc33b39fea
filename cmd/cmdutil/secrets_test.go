package cmdutil

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitectl/sitectl/inventory"
)

// The redactor reads a credentials file with the parser MongoDB and
// ActiveMQ use: a YAML-quoted password is masked as it is used, quotes or
// not, in any position of a line.
func TestRedactorMasksAYAMLQuotedPassword(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"double": "username: admin\npassword: \"Tr1cky#Pass\"\n",
		"single": "username: admin\npassword: 'Tr1cky#Pass'\n",
		"line":   "# sitectl\nadmin:Tr1cky#Pass\n",
	} {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		inv := &inventory.Inventory{MongoDB: &inventory.MongoDB{Credentials: &inventory.Credentials{File: f}}}
		got := Redactor(inv, func(string) string { return "" })("auth failed for admin with Tr1cky#Pass on m1")
		if strings.Contains(got, "Tr1cky#Pass") || !strings.Contains(got, "admin with *** on m1") {
			t.Errorf("%s: %q", name, got)
		}
		user, pass, err := inventory.ReadCredentials(inv.MongoDB.Credentials, nil)
		if err != nil || user != "admin" || pass != "Tr1cky#Pass" {
			t.Errorf("%s: ReadCredentials %q %q %v", name, user, pass, err)
		}
	}
}

// The factory's redactor masks the inventory's secrets once it is loaded,
// and everything that goes through Renderer, Redact and the logger uses it.
func TestFactoryRedactsEverySink(t *testing.T) {
	inv, _ := filepath.Abs("../../inventory/example.yaml")
	io, _, _, errOut := Test()
	var logBuf bytes.Buffer
	f := &Factory{IO: io, Globals: &Globals{Inventory: inv, Verbose: true}, Getenv: func(k string) string {
		return map[string]string{"SITECTL_MONGO_USER": "u", "SITECTL_MONGO_PASSWORD": "s3cr3t-value"}[k]
	}}
	if _, err := f.Inventory(); err != nil {
		t.Fatal(err)
	}
	if got := f.Redact("x s3cr3t-value y"); got != "x *** y" {
		t.Errorf("Redact: %q", got)
	}
	log, _ := NewLogger(&logBuf, true, f.Getenv, f.Redact)
	log.Debug("command s3cr3t-value", "cmd", "echo s3cr3t-value", "err", errors.New("bad s3cr3t-value"), "args", []string{"--x", "s3cr3t-value"})
	if strings.Contains(logBuf.String(), "s3cr3t-value") {
		t.Errorf("logger leaks: %s", logBuf.String())
	}
	if e := RedactError(errors.New("failed: s3cr3t-value"), f.Redact); e.Error() != "failed: ***" {
		t.Errorf("RedactError: %q", e)
	}
	_ = errOut
}

// A local host's declared env is read from sitectl's environment (the
// factory's getenv); nothing else is passed.
func TestTargetsPassOnlyDeclaredEnv(t *testing.T) {
	inv := &inventory.Inventory{Sites: []*inventory.Site{{Name: "A", Hosts: []*inventory.Host{
		{Name: "ops", Local: true, Env: []string{"EF_HOME", "UNSET_ONE"}},
	}}}}
	got := TargetsEnv(inv, func(k string) string {
		return map[string]string{"EF_HOME": "/opt/ef", "SITECTL_MONGO_PASSWORD": "x"}[k]
	})["ops"].Env
	if len(got) != 1 || got[0] != "EF_HOME=/opt/ef" {
		t.Errorf("env of local host ops: %q, want [EF_HOME=/opt/ef]", got)
	}
}

// A webhook URL is a credential wherever it comes from: the inventory's
// url or the variable url_env names.
func TestRedactorMasksWebhookURLs(t *testing.T) {
	const inline, fromEnv = "https://hooks.invalid/services/T1/B1/inlinesecret", "https://hooks.invalid/services/T2/B2/envsecret"
	inv := &inventory.Inventory{Notify: &inventory.Notify{Targets: []*inventory.NotifyTarget{
		{Name: "a", Kind: inventory.NotifySlack, URL: inline},
		{Name: "b", Kind: inventory.NotifySlack, URLEnv: "TEAM_HOOK"},
	}}}
	r := Redactor(inv, func(k string) string {
		if k == "TEAM_HOOK" {
			return fromEnv
		}
		return ""
	})
	got := r("posting to " + inline + " and " + fromEnv + " failed")
	if strings.Contains(got, "secret") {
		t.Errorf("a webhook URL shows: %q", got)
	}
}
