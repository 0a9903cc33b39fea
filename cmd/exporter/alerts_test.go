package exporter

import (
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// promtool finds promtool (Debian package prometheus): skipped where it
// is missing, except in CI, where it must run.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("promtool not found and CI=%s: install it (scripts/install-test-deps.sh installs the Debian package prometheus)", os.Getenv("CI"))
		}
		t.Skip("promtool not found (Debian package prometheus; scripts/install-test-deps.sh)")
	}
	return p
}

// TestAlertRules: docs/alerts.yaml is valid and its alerts fire (and do
// not) as cmd/exporter/testdata/alerts_test.yaml says, by promtool.
func TestAlertRules(t *testing.T) {
	pt := promtool(t)
	if out, err := exec.Command(pt, "check", "rules", "../../docs/alerts.yaml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules docs/alerts.yaml: %v\n%s", err, out)
	}
	cmd := exec.Command(pt, "test", "rules", "alerts_test.yaml")
	cmd.Dir = "testdata"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules cmd/exporter/testdata/alerts_test.yaml: %v\n%s", err, out)
	}
}

// TestAlertRulesUseExportedMetrics: every sitectl_ metric the rules and
// their tests name is one the exporter serves (a renamed metric would
// leave an alert that never fires).
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	served := map[string]bool{}
	for _, d := range allDescs {
		m := regexp.MustCompile(`fqName: "([a-z_]+)"`).FindStringSubmatch(d.String())
		served[m[1]] = true
	}
	for _, f := range []string{"../../docs/alerts.yaml", "testdata/alerts_test.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		names := regexp.MustCompile(`sitectl_[a-z_]+`).FindAllString(string(b), -1)
		if len(names) < 5 {
			t.Fatalf("%s names only %v", f, names)
		}
		for _, n := range names {
			if !served[n] {
				t.Errorf("%s names %s, which the exporter does not serve", f, n)
			}
		}
	}
}
