package plan

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"time"

	"github.com/sitectl/sitectl/checks/services"

	"github.com/sitectl/sitectl/cmd/cmdutil"
	"github.com/sitectl/sitectl/runbooks"
)

// caseResult is the plan of one runbook for one site.
type caseResult struct {
	Runbook string        `json:"runbook"`
	Site    string        `json:"site"`
	OK      bool          `json:"ok"`
	Refused bool          `json:"refused,omitempty"`
	Error   string        `json:"error,omitempty"`
	Tasks   int           `json:"tasks"`
	Took    time.Duration `json:"took_ns"`
	text    string
}

// planAllRun plans every runbook of the catalog for every site: the CI
// dry-run in one call. A runbook that cannot be compiled for a site, or
// whose run would be refused, is a failure; the exit status is 1 if any
// case failed (2 for an invalid inventory or runbook, as always).
func planAllRun(ctx context.Context, opts *Options) error {
	f := opts.F
	inv, cat, err := f.InventoryAndRunbooks()
	if err != nil {
		return err
	}
	var pool services.HostRunner
	if !opts.Offline {
		p := f.Pool(inv)
		defer p.Close()
		pool = p
	}
	var cases []caseResult
	failed := 0
	for _, name := range cat.Names() {
		for _, site := range inv.Sites {
			start := time.Now()
			op := &runbooks.Operation{Inventory: inv, Catalog: cat, Runbook: name, Site: site.Name, Mode: runbooks.DryRun, Hint: cmdutil.TaskHint(inv)}
			if opts.Offline {
				op.Mode = runbooks.Offline
			} else {
				op.Runner = pool
			}
			rep, err := op.Run(ctx)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c := caseResult{Runbook: name, Site: site.Name, Took: time.Since(start)}
			if rep != nil && rep.Result != nil {
				c.Tasks = len(rep.Result.Tasks)
				var b bytes.Buffer
				Write(&b, rep, opts.Offline)
				c.text = b.String()
			}
			switch {
			case err == nil:
				c.OK = true
			case runbooks.IsRefused(err):
				c.Refused, c.Error = true, "the run would be refused: "+err.Error()
			default:
				c.Error = err.Error()
			}
			if !c.OK {
				failed++
			}
			cases = append(cases, c)
		}
	}
	switch opts.Format {
	case "junit":
		if err := writeJUnit(f.IO.Out, inv.File, cases); err != nil {
			return err
		}
	case "json":
		if err := cmdutil.WriteJSON(f.IO.Out, "plan_all", map[string]any{"inventory": inv.File, "offline": opts.Offline, "cases": cases, "failed": failed}); err != nil {
			return err
		}
	default:
		for _, c := range cases {
			status := "ok"
			if !c.OK {
				status = "FAILED: " + c.Error
			}
			fmt.Fprintf(f.IO.Out, "%-20s --site %-4s %3d tasks  %s\n", c.Runbook, c.Site, c.Tasks, status)
		}
		fmt.Fprintf(f.IO.Out, "%d plans, %d failed\n", len(cases), failed)
	}
	if failed > 0 {
		return cmdutil.Silent(cmdutil.ExitFailed)
	}
	return nil
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut *cdata        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type cdata struct {
	Text string `xml:",cdata"`
}

// writeJUnit writes one test suite per runbook and one test case per
// runbook and site, with the plan as system-out and the reason of a
// failure.
func writeJUnit(w io.Writer, inventory string, cases []caseResult) error {
	out := junitSuites{Name: "sitectl plan --all (" + inventory + ")"}
	idx := map[string]int{}
	for _, c := range cases {
		i, ok := idx[c.Runbook]
		if !ok {
			i = len(out.Suites)
			idx[c.Runbook] = i
			out.Suites = append(out.Suites, junitSuite{Name: "runbook " + c.Runbook})
		}
		s := &out.Suites[i]
		jc := junitCase{Name: c.Runbook + " --site " + c.Site, Classname: "sitectl.plan." + c.Runbook, Time: seconds(c.Took)}
		if c.text != "" {
			jc.SystemOut = &cdata{c.text}
		}
		if !c.OK {
			typ := "invalid"
			if c.Refused {
				typ = "refused"
			}
			jc.Failure = &junitFailure{Message: firstLine(c.Error), Type: typ, Text: c.Error}
			s.Failures++
			out.Failures++
		}
		s.Tests++
		out.Tests++
		s.Cases = append(s.Cases, jc)
	}
	for i := range out.Suites {
		var total time.Duration
		for _, c := range cases {
			if "runbook "+c.Runbook == out.Suites[i].Name {
				total += c.Took
			}
		}
		out.Suites[i].Time = seconds(total)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func firstLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}
