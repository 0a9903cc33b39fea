package plan

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitectl/sitectl/cmd/cmdutil"
)

var update = flag.Bool("update", false, "rewrite golden files")

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	io, _, out, _ := cmdutil.Test()
	f := &cmdutil.Factory{IO: io, Globals: &cmdutil.Globals{Inventory: "../../inventory/example.yaml", Output: "text"}, Getenv: func(string) string { return "" }}
	for i, a := range args {
		if a == "-o" {
			f.Globals.Output = args[i+1]
			args = append(args[:i:i], args[i+2:]...)
			break
		}
	}
	cmd := NewCmdPlan(f, nil)
	cmd.SetArgs(args)
	cmd.SetContext(context.Background())
	err := cmd.Execute()
	return out.String(), err
}

// Golden plans: the offline plan of every built-in runbook for each site
// of the example inventory. A change to a runbook or to the planner shows up
// here; regenerate with: go test ./cmd/plan -update
func TestGoldenOfflinePlans(t *testing.T) {
	for _, rb := range []string{"takeover", "renounce", "takeover-reporting", "renounce-reporting", "switchover", "up"} {
		for _, site := range []string{"A", "B"} {
			t.Run(rb+"-"+site, func(t *testing.T) {
				out, err := run(t, rb, "--site", site, "--offline")
				if err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", rb+"-"+site+".golden")
				if *update {
					os.WriteFile(golden, []byte(out), 0o644)
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update)", err)
				}
				if out != string(want) {
					t.Errorf("plan differs from %s (run with -update if intended):\n%s", golden, out)
				}
			})
		}
	}
}

func TestPlanOfflineJSONAndErrors(t *testing.T) {
	out, err := run(t, "switchover", "--site", "B", "--offline", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Runbook string
		Steps   []struct {
			Name  string
			Site  string
			Wave  int
			Tasks []struct{ Action, Outcome, Act string }
		}
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	stopsA, startsB := 0, 0
	maxStopWave, minStartWave := 0, 100
	for _, s := range p.Steps {
		for _, tk := range s.Tasks {
			if tk.Outcome != "planned" {
				t.Errorf("offline task %s outcome %s", s.Name, tk.Outcome)
			}
			switch {
			case tk.Action == "haproxy" || tk.Action == "mongodb" || tk.Action == "activemq":
				// layer steps: checked by the runbooks tests
			case tk.Action == "stop" && s.Site == "A":
				stopsA++
				maxStopWave = max(maxStopWave, s.Wave)
			case tk.Action == "start" && s.Site == "B":
				startsB++
				if strings.HasPrefix(s.Name, "takeover/") {
					minStartWave = min(minStartWave, s.Wave)
				}
			default:
				t.Errorf("switchover to B: %s %s on site %s", s.Name, tk.Action, s.Site)
			}
		}
	}
	if stopsA == 0 || startsB == 0 || maxStopWave >= minStartWave {
		t.Errorf("stops on A %d (last wave %d), starts on B %d (first wave %d): every stop must come first", stopsA, maxStopWave, startsB, minStartWave)
	}
	if _, err := run(t, "nosuch", "--site", "B", "--offline"); err == nil || !strings.Contains(err.Error(), `no runbook named "nosuch"`) {
		t.Errorf("unknown runbook: %v", err)
	}
	if _, err := run(t, "takeover", "--site", "C", "--offline"); err == nil || !strings.Contains(err.Error(), `no site "C"`) {
		t.Errorf("unknown site: %v", err)
	}
	if _, err := run(t, "takeover", "--offline"); err == nil || cmdutil.CodeOf(err) != cmdutil.ExitUsage {
		t.Errorf("no --site: %v", err)
	}
}

// TestPlanAllJUnit: `plan --all --offline --format junit` writes JUnit XML
// that a parser reads, one test case per runbook and site of the example
// inventory, each with its plan.
func TestPlanAllJUnit(t *testing.T) {
	out, err := run(t, "--all", "--offline", "--format", "junit")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name      string  `xml:"name,attr"`
				Classname string  `xml:"classname,attr"`
				Failure   *string `xml:"failure"`
				SystemOut string  `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, out)
	}
	builtins := []string{"renounce", "renounce-reporting", "switchover", "takeover", "takeover-reporting", "up"}
	if doc.Tests != 2*len(builtins) || doc.Failures != 0 || len(doc.Suites) != len(builtins) {
		t.Fatalf("tests %d failures %d suites %d, want %d, 0, %d", doc.Tests, doc.Failures, len(doc.Suites), 2*len(builtins), len(builtins))
	}
	seen := map[string]bool{}
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			seen[c.Name] = true
			if c.Failure != nil || !strings.HasPrefix(c.SystemOut, "Plan: ") {
				t.Errorf("case %s: failure %v, system-out %.40q", c.Name, c.Failure, c.SystemOut)
			}
		}
	}
	for _, rb := range builtins {
		for _, site := range []string{"A", "B"} {
			if !seen[rb+" --site "+site] {
				t.Errorf("no test case %q", rb+" --site "+site)
			}
		}
	}
}

// TestPlanAllRejectsARunbookArgument: --all takes no runbook and no --site.
func TestPlanAllRejectsARunbookArgument(t *testing.T) {
	for _, args := range [][]string{{"takeover", "--all", "--offline"}, {"--all", "--site", "A", "--offline"}, {"takeover", "--site", "A", "--format", "junit"}} {
		_, err := run(t, args...)
		if cmdutil.CodeOf(err) != cmdutil.ExitUsage {
			t.Errorf("%v: err %v, want a usage error", args, err)
		}
	}
}
