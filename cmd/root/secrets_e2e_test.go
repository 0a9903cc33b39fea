package root

// Secrets never reach any output: a command that prints the ActiveMQ
// password (read from a credentials file where it is YAML-quoted) fails on
// a real sshd host; the password must not appear in the text output, the
// JSON output, the final error line, $SITECTL_LOG, the journal or the
// report.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const trickyPass = "Tr1cky#Pass"

func TestSecretsRedactedInEveryOutput(t *testing.T) {
	l := newLayered(t)
	creds := filepath.Join(t.TempDir(), "amq.yaml")
	if err := os.WriteFile(creds, []byte("username: sitectl\npassword: \""+trickyPass+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.extra = strings.Replace(l.extra, "activemq:\n", "activemq:\n  credentials: {file: "+creds+"}\n", 1)
	l.write()
	// A's chat died; its start command prints the password and fails
	b, err := os.ReadFile(l.inv)
	if err != nil {
		t.Fatal(err)
	}
	start := `start: "` + strings.ReplaceAll(l.svc.Cmd("start", "a-chat"), `"`, `\"`) + `"`
	if !strings.Contains(string(b), start) {
		t.Fatalf("inventory has no %s", start)
	}
	leak := `start: "echo login sitectl/` + trickyPass + ` refused >&2; exit 1"`
	if err := os.WriteFile(l.inv, []byte(strings.Replace(string(b), start, leak, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	l.svc.Kill("a-chat")
	logFile := filepath.Join(t.TempDir(), "sitectl.log")
	l.env = map[string]string{"SITECTL_LOG": logFile}

	text := l.sitectl(t.Context(), nil, "takeover", "--site", "A", "--yes", "--verbose")
	if text.code == 0 {
		t.Fatalf("takeover A with a failing start: exit 0\n%s", text.errOut)
	}
	if !strings.Contains(text.errOut, "login sitectl/*** refused") {
		t.Errorf("the failing command's stderr is not shown masked:\n%s", text.errOut)
	}
	run := l.lastRun()
	js := l.sitectl(t.Context(), nil, "takeover", "--site", "A", "--yes", "-o", "json")
	if js.code == 0 || !strings.Contains(js.out, "refused") {
		t.Fatalf("takeover -o json: exit %d\n%s", js.code, js.out)
	}
	report := l.sitectl(t.Context(), nil, "report", run.ID())
	journalBytes, _ := os.ReadFile(run.Path)
	logBytes, err := os.ReadFile(logFile)
	if err != nil || len(logBytes) == 0 {
		t.Fatalf("SITECTL_LOG %s not written: %v", logFile, err)
	}
	for name, s := range map[string]string{
		"text stderr": text.errOut, "text stdout": text.out, "json stdout": js.out, "json stderr": js.errOut,
		"report": report.out, "journal": string(journalBytes), "SITECTL_LOG": string(logBytes),
	} {
		if strings.Contains(s, trickyPass) {
			t.Errorf("the password appears in the %s:\n%s", name, s)
		}
	}
}
